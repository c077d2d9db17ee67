import { randomBytes } from 'node:crypto';
import type Koa from 'koa';
import { pino } from 'pino';
import supertest from 'supertest';
import { loadConfig, type Config } from '../../config.js';
import type { UserRow } from '../../db/types.js';
import { createApp, type AppDeps } from '../../server/app.js';
import { HTTP_SESSION_COOKIE } from '../../server/http-session-cookie.js';
import type { Knex } from '../../db/knex.js';
import { testDatabaseUrl, testKnex } from './database.js';

/** Configuration as a test process sees it: the test database, a queue prefix of its own, quiet logs. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    ...process.env,
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    LOG_PRETTY: 'false',
    DATABASE_URL: testDatabaseUrl(),
    // Never the developer's real prefix: a test's jobs must not reach a running worker.
    QUEUE_PREFIX: `srtest-${randomBytes(4).toString('hex')}`,
    SESSION_SECRET: 'test-secret-a,test-secret-b',
    // Off unless a test turns them on (test/rate-limits.test.ts, test/security): other suites send far
    // more than 100 requests, and register far more than 10 users, from one address.
    API_RATE_LIMIT: '0',
    REGISTER_RATE_LIMIT: '0',
    ...overrides,
  });
}

export interface TestApp {
  app: Koa;
  config: Config;
  knex: Knex;
  /** supertest bound to the app's callback (no port). */
  http: () => supertest.Agent;
}

/** The real application against the test database. */
export function createTestApp(options: { env?: Record<string, string>; deps?: Partial<AppDeps>; knex?: Knex } = {}): TestApp {
  const config = testConfig(options.env);
  const knex = options.knex ?? testKnex();
  const app = createApp({ config, knex, logger: pino({ level: config.logLevel }), ...options.deps });
  const callback = app.callback();
  return { app, config, knex, http: () => supertest.agent(callback) };
}

export interface TestUser {
  user: UserRow;
  email: string;
  password: string;
  /** The login cookie's `connect.sid=<value>` pair, as the reference client sends it. */
  cookie: string;
}

/** Registers a fresh user through the API and returns its login cookie. */
export async function registerUser(t: TestApp, fields: { firstName?: string } = {}): Promise<TestUser> {
  const email = `user-${randomBytes(6).toString('hex')}@example.test`;
  const password = 'correct horse battery staple';
  const res = await t.http().post('/api/auth/register').send({ email, password, ...fields }).expect(201);
  const cookie = httpSessionCookie(res.headers['set-cookie']);
  const user = await t.knex<UserRow>('users').where({ id: res.body.id }).first();
  return { user: user!, email, password, cookie };
}

/** Extracts the login cookie's `connect.sid=<value>` pair from Set-Cookie headers. */
export function httpSessionCookie(setCookie: string | string[] | undefined): string {
  const all = Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [];
  const prefix = `${HTTP_SESSION_COOKIE}=`;
  const found = all.map((c) => c.split(';')[0]!).filter((c) => c.startsWith(prefix) && c !== prefix);
  const last = found[found.length - 1];
  if (!last) throw new Error(`no ${HTTP_SESSION_COOKIE} cookie in ${JSON.stringify(all)}`);
  return last;
}

/** Makes a user an administrator directly in the database. */
export async function promote(t: TestApp, user: TestUser, role: 'admin' | 'super_admin' = 'admin'): Promise<void> {
  await t.knex('users').where({ id: user.user.id }).update({ role });
}
