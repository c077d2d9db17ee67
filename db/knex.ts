import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import knexPackage, { type Knex } from 'knex';
import pg from 'pg';

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
 * itself. `text` numbers its parameters ($1, $2 …).
 */
export async function preparedQuery<R extends pg.QueryResultRow>(db: Knex, name: string, text: string, values: unknown[]): Promise<R[]> {
  const source = db.client as ConnectionSource;
  const connection = await source.acquireConnection();
  try {
    return (await connection.query<R>({ name: prepared(name).name, text, values })).rows;
  } finally {
    // Inside a transaction this gives nothing back: the transaction keeps its connection.
    await source.releaseConnection(connection);
  }
}

export interface KnexOptions {
  databaseUrl: string;
  /** Upper bound of pooled connections for this process. */
  poolMax?: number;
  /** Sent as `application_name`, so `pg_stat_activity` tells which process holds a connection. */
  applicationName?: string;
}

/** Knex settings shared by the processes and by `knexfile.ts` (the knex CLI). */
export function knexConfig(options: KnexOptions): Knex.Config {
  return {
    client: 'pg',
    connection: { connectionString: options.databaseUrl, application_name: options.applicationName ?? 'showrunner' },
    pool: { min: 0, max: options.poolMax ?? 10 },
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
