import pg from 'pg';

function split(databaseUrl: string): { name: string; maintenanceUrl: string } {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!name) throw new Error('DATABASE_URL names no database');
  url.pathname = '/postgres';
  return { name, maintenanceUrl: url.toString() };
}

const quote = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/**
 * Creates the database DATABASE_URL names when it does not exist yet (connecting to the server's
 * `postgres` database to do so). With `recreate`, an existing one is dropped first; with `template`,
 * it is a copy of that database (tests clone a migrated template this way).
 * Returns true when it created the database.
 */
export async function ensureDatabase(databaseUrl: string, options: { recreate?: boolean; template?: string } = {}): Promise<boolean> {
  const { name, maintenanceUrl } = split(databaseUrl);
  const client = new pg.Client({ connectionString: maintenanceUrl });
  await client.connect();
  try {
    if (options.recreate) await client.query(`DROP DATABASE IF EXISTS ${quote(name)} WITH (FORCE)`);
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount) return false;
    try {
      await client.query(`CREATE DATABASE ${quote(name)}${options.template ? ` TEMPLATE ${quote(options.template)}` : ''}`);
    } catch (e) {
      // Another process created it between the check and the CREATE.
      if ((e as { code?: string }).code !== '42P04') throw e;
      return false;
    }
    return true;
  } finally {
    await client.end();
  }
}

/** Drops the database DATABASE_URL names, if it exists. */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const { name, maintenanceUrl } = split(databaseUrl);
  const client = new pg.Client({ connectionString: maintenanceUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${quote(name)} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

/** One round trip on a pool or a connection of node-postgres (readiness checks). */
export async function pingPostgres(queryable: Pick<pg.Pool, 'query'> | Pick<pg.Client, 'query'>): Promise<void> {
  await queryable.query('SELECT 1');
}
