import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { portAnswers } from '../../scripts/lib/azurite.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../scripts/lib/embedded-postgres.js';
import { findChromium } from './chromium.js';
import { aptInstall, canAptInstall, onPath } from './install.js';
import { startRedisServer, type RedisServer } from './redis-server.js';

/**
 * What `npm test` needs that a fresh machine may lack, found or installed once by the global setup,
 * before any suite and its time limits, and handed to the test processes through the environment:
 *
 * - PostgreSQL: TEST_DATABASE_URL or DATABASE_URL, else one at 127.0.0.1:5432, else an embedded one
 *   (as `npm run dev` starts) in a temporary folder, for this run only;
 * - `redis-server` and `redis-cli` on the PATH (the Redis tests start their own), else, as root with
 *   apt-get, Debian's `redis-server` installed; and REDIS_URL, else one at 127.0.0.1:6379, else a
 *   redis-server of the run's own;
 * - Chromium for the browser tests (test/helpers/chromium.ts), which fail alone if there is none.
 */
export interface FreshMachine {
  stop(): Promise<void>;
}

const REDIS_HOW_TO =
  'the tests need redis-server and redis-cli on the PATH: install Debian\'s "redis-server" package (apt-get install redis-server; the tests do that themselves when run as root)';

async function ensureRedisBinaries(): Promise<void> {
  if (onPath('redis-server') && onPath('redis-cli')) return;
  if (!canAptInstall()) throw new Error(REDIS_HOW_TO);
  await aptInstall(['redis-server'], REDIS_HOW_TO);
  if (!onPath('redis-server') || !onPath('redis-cli')) throw new Error(`apt-get installed "redis-server" but redis-server or redis-cli is not on the PATH: ${REDIS_HOW_TO}`);
}

async function sharedRedis(): Promise<RedisServer | undefined> {
  if (process.env.REDIS_URL || (await portAnswers('127.0.0.1', 6379, 1_000))) return undefined;
  const server = await startRedisServer();
  process.env.REDIS_URL = server.url;
  console.log(`no Redis at 127.0.0.1:6379 and REDIS_URL is not set: the run uses a redis-server of its own at ${server.url}`);
  return server;
}

async function testPostgres(): Promise<{ server: EmbeddedPostgres; dir: string } | undefined> {
  if (process.env.TEST_DATABASE_URL || process.env.DATABASE_URL || (await portAnswers('127.0.0.1', 5432, 1_000))) return undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'showrunner-test-postgres-'));
  // As root the server runs as the OS user postgres, which must reach its data directory.
  chmodSync(dir, 0o755);
  const server = await startEmbeddedPostgres(path.join(dir, 'data'));
  process.env.TEST_DATABASE_URL = server.url('showrunner_test');
  console.log(`no PostgreSQL at 127.0.0.1:5432 and neither TEST_DATABASE_URL nor DATABASE_URL is set: the run uses an embedded PostgreSQL 18 at ${process.env.TEST_DATABASE_URL}`);
  return { server, dir };
}

export async function prepareFreshMachine(): Promise<FreshMachine> {
  await ensureRedisBinaries();
  // Found (or installed) now, outside any test's time limit; a browser test still fails alone without one.
  const chromium = await findChromium().catch((e: Error) => console.warn(`the browser tests will fail: ${e.message}`));
  if (chromium) process.env.CHROMIUM_PATH ??= chromium;
  const [redis, postgres] = await Promise.all([sharedRedis(), testPostgres()]);
  return {
    async stop() {
      await Promise.all([redis?.destroy(), postgres?.server.stop()]);
      if (postgres) rmSync(postgres.dir, { recursive: true, force: true });
    },
  };
}
