import { randomBytes } from 'node:crypto';
import { dropDatabase, ensureDatabase } from '../../db/database.js';
import { createKnex, type Knex } from '../../db/knex.js';
import { migrateLatest } from '../../db/migrate.js';

/** The server the tests use: TEST_DATABASE_URL, else DATABASE_URL, else the local default. */
function baseUrl(): URL {
  return new URL(process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/showrunner');
}

function withName(name: string): string {
  const url = baseUrl();
  url.pathname = `/${name}`;
  return url.toString();
}

/** The base name of this run's databases: TEST_DATABASE_URL's name, else `<DATABASE_URL's name>_test`. */
function baseName(): string {
  const name = decodeURIComponent(baseUrl().pathname.replace(/^\//, '')) || 'showrunner';
  return process.env.TEST_DATABASE_URL ? name : `${name}_test`;
}

const templateName = (): string => `${baseName()}_template`;

/**
 * The dedicated test database most suites share: one per mocha worker process when the run is
 * parallel (`MOCHA_WORKER_ID`), so the files of one worker share it one after another, as the
 * files of a serial run share the base one.
 */
export function testDatabaseUrl(): string {
  const worker = process.env.MOCHA_WORKER_ID;
  return withName(worker === undefined ? baseName() : `${baseName()}_w${worker}`);
}

/**
 * Migrates a template database once per run and clones the shared test database from it.
 * Suites that need a database of their own (job stacks, whose relays would otherwise pick up each
 * other's outbox rows) clone the template too.
 */
export async function prepareTestDatabase(): Promise<void> {
  const template = withName(templateName());
  await ensureDatabase(template, { recreate: true });
  const knex = createKnex({ databaseUrl: template, poolMax: 1 });
  try {
    await migrateLatest(knex);
  } finally {
    await knex.destroy();
  }
  await ensureDatabase(testDatabaseUrl(), { recreate: true, template: templateName() });
}

let workerDatabase: Promise<unknown> | undefined;

/**
 * A parallel run's worker clones its shared database from the template before its first file (a
 * database left by an earlier run is made again); the global teardown drops it.
 */
export function prepareWorkerDatabase(): Promise<unknown> {
  if (process.env.MOCHA_WORKER_ID === undefined) return Promise.resolve();
  workerDatabase ??= ensureDatabase(testDatabaseUrl(), { recreate: true, template: templateName() });
  return workerDatabase;
}

/** Drops the parallel workers' shared databases (`<base>_w<id>`), from the main process at the end of a run. */
export async function dropWorkerDatabases(): Promise<void> {
  // The main process's own database (a connection to the template would block clones of it).
  const knex = createKnex({ databaseUrl: testDatabaseUrl(), poolMax: 1 });
  try {
    const pattern = `${baseName().replace(/[\\%_]/g, (c) => `\\${c}`)}\\_w%`;
    const names = (await knex('pg_database').where('datname', 'like', pattern).pluck('datname')) as string[];
    await Promise.all(names.map((name) => dropDatabase(withName(name))));
  } finally {
    await knex.destroy();
  }
}

/** A fresh, migrated database of its own; drop it with {@link dropTestDatabase}. */
export async function cloneTestDatabase(): Promise<string> {
  const url = withName(`${baseName()}_${randomBytes(4).toString('hex')}`);
  await ensureDatabase(url, { template: templateName() });
  return url;
}

export async function dropTestDatabase(url: string): Promise<void> {
  await dropDatabase(url);
}

/**
 * A database of the enclosing `describe`'s own, with a knex pool on it: cloned from the template in
 * a `before` hook, closed and dropped in an `after` hook. For suites whose rows would change every
 * other suite's (a seeded feed of 50,000 snapshots, an outbox's history). Call it first in the
 * `describe`, so that its database exists for the suite's own hooks.
 */
export function ownTestDatabase(options: { poolMax?: number; applicationName?: string } = {}): { readonly url: string; readonly knex: Knex } {
  let url: string | undefined;
  let knex: Knex | undefined;
  before(async () => {
    url = await cloneTestDatabase();
    knex = createKnex({ databaseUrl: url, poolMax: options.poolMax ?? 2, ...(options.applicationName ? { applicationName: options.applicationName } : {}) });
  });
  after(async () => {
    await knex?.destroy();
    if (url) await dropTestDatabase(url);
  });
  const made = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('ownTestDatabase: the database is made in a before hook; use it from hooks and tests');
    return value;
  };
  return {
    get url() {
      return made(url);
    },
    get knex() {
      return made(knex);
    },
  };
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
