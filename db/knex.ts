import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import knexPackage, { type Knex } from 'knex';
import pg from 'pg';
import type { Config } from '../config.js';

export type { Knex };

// Return int8 (bigint, count(*)) as numbers: our ids and counts stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));

const here = path.dirname(fileURLToPath(import.meta.url));
// Running from TypeScript (tsx, tests) or from compiled output (dist/) decides which migration files load.
const ext = path.extname(fileURLToPath(import.meta.url)) === '.ts' ? '.ts' : '.js';

/**
 * The files in `db/migrations`, named without their extension: the source (`.ts`, through tsx) and
 * the build (`.js`, as the Procfile runs it) are the same migrations, so a database migrated by one
 * is current for the other.
 */
export interface MigrationFile {
  /** The name knex records: the file name without its extension. */
  name: string;
  file: string;
}

class MigrationFiles implements Knex.MigrationSource<MigrationFile> {
  private readonly directory = path.join(here, 'migrations');

  async getMigrations(): Promise<MigrationFile[]> {
    const files = (await readdir(this.directory)).filter((f) => f.endsWith(ext) && !f.endsWith('.d.ts')).sort();
    return files.map((file) => ({ name: file.slice(0, -ext.length), file }));
  }

  getMigrationName(migration: MigrationFile): string {
    return migration.name;
  }

  async getMigration(migration: MigrationFile): Promise<Knex.Migration> {
    return (await import(pathToFileURL(path.join(this.directory, migration.file)).href)) as Knex.Migration;
  }
}

/**
 * Query options that make a statement a named prepared statement on each pooled connection, so
 * PostgreSQL parses and plans it once per connection instead of on every request. For the hot
 * paths only (each PATCH and each authenticated request); `name` must always stand for the same
 * SQL text. Behind PgBouncer in transaction mode this needs PgBouncer 1.21 or later with
 * `max_prepared_statements` set.
 */
export function prepared(name: string): { name: string } {
  let options = preparedNames.get(name);
  if (!options) {
    const full = `showrunner:${name}`;
    // PostgreSQL truncates names to 63 bytes, which would make two long names one statement.
    options = { name: Buffer.byteLength(full) <= 63 ? full : `showrunner:${createHash('sha256').update(name).digest('base64url').slice(0, 32)}` };
    preparedNames.set(name, options);
  }
  return options;
}

/** Names are few (one per statement, and per changed-column list of a PATCH): worked out once each. */
const preparedNames = new Map<string, { name: string }>();

/** What `preparedQuery` needs of knex's client: the connection it would run a query on. */
interface ConnectionSource {
  acquireConnection(): Promise<pg.Client>;
  releaseConnection(connection: pg.Client): Promise<unknown>;
}

/**
 * Runs one statement as a named prepared statement (see `prepared`) straight through node-postgres,
 * on the connection knex would use: the transaction's inside one, else one from knex's pool, given
 * back afterwards. For the few statements every request runs: knex's own path (its runner, the
 * binding rewrite, four events per query) cost about as much CPU per statement as node-postgres
 * itself. `text` numbers its parameters ($1, $2 …). Each named statement stays prepared on every
 * connection that ran it, so names must come from a bounded set; `null` runs it unnamed.
 */
export async function preparedQuery<R extends pg.QueryResultRow>(db: Knex, name: string | null, text: string, values: unknown[]): Promise<R[]> {
  const source = db.client as ConnectionSource;
  const connection = await source.acquireConnection();
  try {
    // No name: the same path, but an unnamed statement, which the connection does not keep.
    return (await connection.query<R>(name === null ? { text, values } : { name: prepared(name).name, text, values })).rows;
  } finally {
    // Inside a transaction this gives nothing back: the transaction keeps its connection.
    await source.releaseConnection(connection);
  }
}

/** The deadlines of one process's PostgreSQL connections (see {@link databaseBounds}). */
export interface DatabaseBounds {
  /** How long the client waits for one statement; past it the statement fails and its connection is destroyed. */
  queryTimeoutMs: number;
  /** How long opening a connection may take. */
  connectTimeoutMs: number;
  /** PostgreSQL's `statement_timeout` for the connection's session; 0 or absent: none. */
  statementTimeoutMs?: number;
}

/**
 * The bounds a process's pool runs with: every process gets the client-side deadlines; the web's
 * connections also get PostgreSQL's `statement_timeout`, so a slow statement is cancelled by the
 * server (the connection survives) before the client's deadline would have to destroy it. Workers
 * and scripts run longer statements on purpose (batched maintenance, operator passes) and rely on
 * the client-side deadline alone.
 */
export function databaseBounds(config: Pick<Config, 'bounds'>, role: 'web' | 'worker' | 'script'): DatabaseBounds {
  const { databaseQueryMs, databaseConnectMs, databaseStatementMs } = config.bounds;
  return { queryTimeoutMs: databaseQueryMs, connectTimeoutMs: databaseConnectMs, ...(role === 'web' ? { statementTimeoutMs: databaseStatementMs } : {}) };
}

export interface KnexOptions {
  databaseUrl: string;
  /** Upper bound of pooled connections for this process. */
  poolMax?: number;
  /** Sent as `application_name`, so `pg_stat_activity` tells which process holds a connection. */
  applicationName?: string;
  /** Deadlines (absent: none, for the bench's and the tests' own pools, which seed large tables). */
  bounds?: DatabaseBounds;
}

/** The message node-postgres fails a statement with at its `query_timeout`. */
const QUERY_TIMEOUT_MESSAGE = 'Query read timeout';

/**
 * TCP keepalive on every connection, probing after this long idle: a peer that vanished is noticed by
 * the operating system even on a connection no statement is waiting on.
 */
const KEEPALIVE_IDLE_MS = 10_000;

/**
 * node-postgres settings for one connection, shared by knex's pool and the relay's LISTEN connection:
 * keepalive always, and the deadlines when given.
 */
export function pgConnectionSettings(options: Omit<KnexOptions, 'poolMax'>): pg.ClientConfig {
  const bounds = options.bounds;
  return {
    connectionString: options.databaseUrl,
    application_name: options.applicationName ?? 'showrunner',
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
    ...(bounds ? { query_timeout: bounds.queryTimeoutMs, connectionTimeoutMillis: bounds.connectTimeoutMs } : {}),
    ...(bounds?.statementTimeoutMs ? { statement_timeout: bounds.statementTimeoutMs } : {}),
  };
}

type QueryFunction = (...args: unknown[]) => unknown;

/**
 * node-postgres ends the caller's wait at `query_timeout` but keeps the connection, with the statement
 * still running (or its reply lost on a silent network) and the protocol mid-reply: knex would give
 * it back to the pool, and the next caller's statement would queue behind a reply that never comes.
 * Here a timed-out statement destroys its connection's socket instead: the client ends, knex marks it
 * disposed and drops it at its next acquire, and the pool opens a fresh one.
 */
export function destroyOnQueryTimeout(client: pg.Client): void {
  const socket = (client as unknown as { connection: { stream: { destroy(): void } } }).connection;
  const destroyIfTimedOut = (err: unknown): void => {
    if (err instanceof Error && err.message === QUERY_TIMEOUT_MESSAGE) socket.stream.destroy();
  };
  const query = (client.query as QueryFunction).bind(client);
  (client as unknown as { query: QueryFunction }).query = (...args: unknown[]) => {
    const callback = args.at(-1);
    if (typeof callback === 'function') {
      args[args.length - 1] = (err: unknown, result: unknown) => {
        destroyIfTimedOut(err);
        (callback as (err: unknown, result: unknown) => void)(err, result);
      };
      return query(...args);
    }
    const result = query(...args);
    // A second reader of the promise: the caller still gets the rejection.
    if (result instanceof Promise) result.then(undefined, destroyIfTimedOut);
    return result;
  };
}

/** Knex settings shared by the processes and by `knexfile.ts` (the knex CLI). */
export function knexConfig(options: KnexOptions): Knex.Config {
  return {
    client: 'pg',
    connection: pgConnectionSettings(options) as Knex.PgConnectionConfig,
    pool: {
      min: 0,
      max: options.poolMax ?? 10,
      afterCreate: (connection: pg.Client, done: (err: Error | null, connection: pg.Client) => void) => {
        destroyOnQueryTimeout(connection);
        done(null, connection);
      },
    },
    acquireConnectionTimeout: 10_000,
    migrations: { migrationSource: new MigrationFiles(), tableName: 'knex_migrations' },
  };
}

export function createKnex(options: KnexOptions): Knex {
  return knexPackage.knex(knexConfig(options));
}

/** One round trip to the database: readiness checks use it. */
export async function pingDatabase(knex: Knex): Promise<void> {
  await knex.raw('select 1');
}
