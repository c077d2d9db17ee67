import { runMigrations } from 'bullmq';
import pg from 'pg';
import type { Config } from '../config.js';
import { destroyOnQueryTimeout, pgConnectionSettings, type Knex } from './knex.js';

export type { pg };

/** The schema BullMQ's PostgreSQL backend keeps its queues in (`QUEUE_BACKEND=postgres`). */
export const QUEUE_SCHEMA = 'bullmq';

/**
 * Brings BullMQ's own schema up to the version this BullMQ needs, on one dedicated connection (its
 * migrations take an advisory lock and run in one transaction). Idempotent, and run by every
 * `npm run migrate` whatever QUEUE_BACKEND is, so switching the job store needs no extra step.
 * Returns the schema version.
 */
export async function migrateQueueSchema(knex: Knex): Promise<number> {
  const client = knex.client as { acquireConnection(): Promise<pg.Client>; releaseConnection(c: pg.Client): Promise<unknown> };
  const connection = await client.acquireConnection();
  try {
    return await runMigrations(connection, QUEUE_SCHEMA);
  } finally {
    await client.releaseConnection(connection);
  }
}

/**
 * The PostgreSQL pool of a process's queues. Each BullMQ Worker checks one connection out of it for
 * good (its LISTEN connection), so a worker process's pool is `queues + slots`. Connections carry the
 * `bullmq` search_path (BullMQ's SQL names no schema), keepalive, and the process's deadlines; a
 * statement past its deadline destroys its connection, as knex's pools do (db/knex.ts).
 */
export function createQueuePool(config: Pick<Config, 'databaseUrl' | 'bounds'>, name: string, max: number): pg.Pool {
  const settings = pgConnectionSettings({
    databaseUrl: config.databaseUrl,
    // `<name>-queues` in pg_stat_activity; a Worker renames its LISTEN connection to its queue's name.
    applicationName: `${name}-queues`,
    bounds: { queryTimeoutMs: config.bounds.databaseQueryMs, connectTimeoutMs: config.bounds.databaseConnectMs },
  });
  const pool = new pg.Pool({ ...settings, options: `-c search_path=${QUEUE_SCHEMA}`, max, idleTimeoutMillis: 30_000 });
  pool.on('connect', (client) => destroyOnQueryTimeout(client));
  // An idle connection that drops (a restart, pg_terminate_backend) is replaced at the next checkout.
  pool.on('error', () => undefined);
  return pool;
}
