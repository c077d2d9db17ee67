import { runMigrations } from 'bullmq';
import type pg from 'pg';
import type { Knex } from './knex.js';

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
