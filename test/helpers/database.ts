import pg from 'pg';
import { createKnex, type Knex } from '../../db/knex.js';
import { migrateLatest } from '../../db/migrate.js';

/** The server the tests use: TEST_DATABASE_URL, else DATABASE_URL, else the local default. */
function baseUrl(): URL {
  return new URL(process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/showrunner');
}

/** The dedicated test database: `<name>_test` unless TEST_DATABASE_URL names one. */
export function testDatabaseUrl(): string {
  const url = baseUrl();
  if (!process.env.TEST_DATABASE_URL) url.pathname = `/${url.pathname.replace(/^\//, '') || 'showrunner'}_test`;
  return url.toString();
}

/** Creates the test database afresh (dropping a leftover one) and applies every migration. */
export async function prepareTestDatabase(): Promise<void> {
  const target = new URL(testDatabaseUrl());
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(target);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name.replace(/"/g, '""')}" WITH (FORCE)`);
    await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
  } finally {
    await client.end();
  }
  const knex = createKnex({ databaseUrl: target.toString(), poolMax: 2 });
  try {
    await migrateLatest(knex);
  } finally {
    await knex.destroy();
  }
}

let shared: Knex | undefined;

/** One pool for the whole run; closed by the global teardown. */
export function testKnex(): Knex {
  shared ??= createKnex({ databaseUrl: testDatabaseUrl(), poolMax: 10, applicationName: 'showrunner-test' });
  return shared;
}

export async function closeTestKnex(): Promise<void> {
  await shared?.destroy();
  shared = undefined;
}
