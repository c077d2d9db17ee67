import { randomBytes } from 'node:crypto';
import pg from 'pg';
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

/**
 * This run's tag, in the name of every database it makes: `r<pid>` of the run's main process (set
 * there by the global setup, before any mocha worker starts, and inherited by the workers). Two runs
 * on one server, each with its own tag, never share a database nor drop each other's.
 */
function runTag(): string {
  return (process.env.SHOWRUNNER_TEST_RUN ??= `r${process.pid}`);
}

/** The prefix of this run's databases: `<base>_r<pid>`. */
const runName = (): string => `${baseName()}_${runTag()}`;

const templateName = (): string => `${runName()}_template`;

/**
 * The dedicated test database most suites share: one per mocha worker process when the run is
 * parallel (`MOCHA_WORKER_ID`), so the files of one worker share it one after another, as the
 * files of a serial run share the run's own one.
 */
export function testDatabaseUrl(): string {
  const worker = process.env.MOCHA_WORKER_ID;
  return withName(worker === undefined ? runName() : `${runName()}_w${worker}`);
}

/** `LIKE` pattern of names starting with `prefix`. */
const startsWith = (prefix: string): string => `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/** Names of the server's databases that start with `prefix`. */
async function databasesStartingWith(prefix: string): Promise<string[]> {
  const url = baseUrl();
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    return (await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [startsWith(prefix)])).rows.map((r) => r.datname);
  } finally {
    await client.end();
  }
}

/** Whether a process of that id runs (one we may not signal runs too). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Drops the databases of earlier runs whose main process is gone (a run that was killed could not
 * drop its own); a run still going keeps its databases.
 */
async function dropDeadRunsDatabases(): Promise<void> {
  const tagged = new RegExp(`^${baseName().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}_r(\\d+)(_|$)`);
  const names = await databasesStartingWith(`${baseName()}_r`);
  const dead = names.filter((name) => {
    const pid = tagged.exec(name)?.[1];
    return pid !== undefined && !isRunning(Number(pid));
  });
  await Promise.all(dead.map((name) => dropDatabase(withName(name))));
}

/**
 * Migrates this run's template database once and clones the run's shared test database from it.
 * Suites that need a database of their own (job stacks, whose relays would otherwise pick up each
 * other's outbox rows) clone the template too.
 */
export async function prepareTestDatabase(): Promise<void> {
  runTag();
  await dropDeadRunsDatabases();
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

/** A parallel run's worker clones its shared database from the run's template before its first file. */
export function prepareWorkerDatabase(): Promise<unknown> {
  if (process.env.MOCHA_WORKER_ID === undefined) return Promise.resolve();
  workerDatabase ??= ensureDatabase(testDatabaseUrl(), { recreate: true, template: templateName() });
  return workerDatabase;
}

/**
 * Drops every database of this run (its template, its shared ones, the workers', any clone a
 * suite left), from the main process at the end of the run, once its own pool is closed.
 */
export async function dropRunDatabases(): Promise<void> {
  const names = await databasesStartingWith(`${runName()}_`);
  // The template last: nothing may be cloned from it while it goes, and nothing is by now.
  await Promise.all(names.filter((n) => n !== templateName()).map((name) => dropDatabase(withName(name))));
  await Promise.all([dropDatabase(withName(runName())), dropDatabase(withName(templateName()))]);
}

/** A fresh, migrated database of its own; drop it with {@link dropTestDatabase}. */
export async function cloneTestDatabase(): Promise<string> {
  const url = withName(`${runName()}_${randomBytes(4).toString('hex')}`);
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
