import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';
import { pino } from 'pino';
import { createApp } from '../../server/app.js';
import { routeTable, type RouteInfo } from '../../server/routing.js';
import { httpSessionCookie, promote, registerUser, type TestUser } from './app.js';
import { createSession, serveImages } from './flows.js';
import { startJobStack, type JobStack } from './job-stack.js';
import { waitFor } from './wait.js';

/** Who calls: nobody, a logged-in user who owns nothing involved, the owner of every target, an admin (who owns none). */
export type Actor = 'anonymous' | 'user' | 'owner' | 'admin';
export const ACTORS: readonly Actor[] = ['anonymous', 'user', 'owner', 'admin'];

/** The targets the table's routes act on, made once per suite by {@link accessFixtures}. */
export interface Fixtures {
  users: Record<Exclude<Actor, 'anonymous'>, TestUser>;
  /** The owner's private session, public session, and one to delete. */
  priv: number;
  pub: number;
  doomed: number;
  /** A session with a share link to revoke, and `pub`'s share code. */
  linked: number;
  code: string;
  /** A ready community snapshot of the owner's, and one an admin removes. */
  snapshot: number;
  doomedSnapshot: number;
  /** Text only the owner may see (in their private session's title and AI prompt). */
  secret: string;
}

/**
 * What a route expects: the status for each actor tried (`served`: let through to the handler, which
 * answers as it will, but never 401, 403 or 5xx), the path's parameters, a body.
 */
export interface Expectation {
  expect: Partial<Record<Actor, number | 'served'>>;
  params?: (f: Fixtures) => Record<string, string | number>;
  body?: (f: Fixtures, actor: Actor) => Record<string, unknown>;
  /** Acts on the caller's own login (register, login, logout): the caller uses a login session made for this request. */
  ownLogin?: boolean;
}

const everyone = (status: number) => ({ anonymous: status, user: status, owner: status, admin: status });
const loggedIn = (status: number) => ({ anonymous: 401, user: status, owner: status, admin: status });
const adminOnly = (status: number) => ({ anonymous: 401, user: 403, owner: 403, admin: status });
/** Another user's session answers like a missing one (404), admins included. */
const ownerOnly = (status: number) => ({ anonymous: 401, user: 404, owner: status, admin: 404 });
const reason = () => ({ reason: 'access matrix' });

/**
 * The expected access of every route, keyed `METHOD path` as the route table names it. A route the
 * app serves without an entry here fails the access matrix: a new route is reviewed, not assumed.
 * bull-board's routes are listed by {@link DASHBOARD_EXPECTATION}.
 */
export const EXPECTED_ACCESS: Record<string, Expectation> = {
  'GET /healthz': { expect: everyone(200) },
  'GET /readyz': { expect: everyone(200) },
  'GET /api/openapi.json': { expect: everyone(200) },
  'GET /api/categories': { expect: everyone(200) },

  'POST /api/auth/register': { expect: everyone(201), ownLogin: true, body: () => ({ email: `matrix-${randomBytes(5).toString('hex')}@example.test`, password: 'correct horse battery staple' }) },
  'POST /api/auth/login': { expect: everyone(200), ownLogin: true, body: (f) => ({ email: f.users.user.email, password: f.users.user.password }) },
  'POST /api/login': { expect: everyone(302), ownLogin: true, body: (f) => ({ email: f.users.user.email, password: f.users.user.password }) },
  'POST /api/auth/logout': { expect: everyone(200), ownLogin: true },
  'GET /api/logout': { expect: everyone(200), ownLogin: true },
  'GET /api/auth/user': { expect: loggedIn(200) },

  'GET /api/sessions': { expect: loggedIn(200) },
  'POST /api/sessions': { expect: loggedIn(201), body: () => ({ title: 'New', subreddits: 'pics', thumbnail: 'https://cdn.example.test/t.png' }) },
  'GET /api/sessions/:id': { expect: ownerOnly(200), params: (f) => ({ id: f.priv }) },
  'PATCH /api/sessions/:id': { expect: ownerOnly(200), params: (f) => ({ id: f.priv }), body: () => ({ isFavorite: true }) },
  'DELETE /api/sessions/:id': { expect: ownerOnly(204), params: (f) => ({ id: f.doomed }) },
  'POST /api/sessions/:id/share': { expect: ownerOnly(200), params: (f) => ({ id: f.pub }) },
  'DELETE /api/sessions/:id/share': { expect: ownerOnly(204), params: (f) => ({ id: f.linked }) },
  'GET /api/shared/:code/preview': { expect: everyone(200), params: (f) => ({ code: f.code }) },
  'GET /api/shared/:code': { expect: loggedIn(200), params: (f) => ({ code: f.code }) },

  'GET /api/community': { expect: loggedIn(200) },
  'GET /api/community/sessions/:snapshotId': { expect: loggedIn(200), params: (f) => ({ snapshotId: f.snapshot }) },
  'POST /api/community/sessions/:snapshotId/like': { expect: loggedIn(200), params: (f) => ({ snapshotId: f.snapshot }) },
  'DELETE /api/community/sessions/:snapshotId/like': { expect: loggedIn(200), params: (f) => ({ snapshotId: f.snapshot }) },
  'POST /api/community/sessions/:snapshotId/save': { expect: loggedIn(200), params: (f) => ({ snapshotId: f.snapshot }) },

  'GET /api/admin/overview': { expect: adminOnly(200) },
  'GET /api/admin/snapshots': { expect: adminOnly(200) },
  'POST /api/admin/snapshots/:id/rerun': { expect: adminOnly(202), params: (f) => ({ id: f.snapshot }) },
  'POST /api/admin/sessions/:id/thumbnail': { expect: adminOnly(202), params: (f) => ({ id: f.priv }) },
  'POST /api/admin/queues/:queue/retry-failed': { expect: adminOnly(202), params: () => ({ queue: 'media' }) },
  'POST /api/admin/community/:id/hide': { expect: adminOnly(200), params: (f) => ({ id: f.snapshot }), body: reason },
  'POST /api/admin/community/:id/unhide': { expect: adminOnly(200), params: (f) => ({ id: f.snapshot }), body: reason },
  'DELETE /api/admin/community/:id': { expect: adminOnly(200), params: (f) => ({ id: f.doomedSnapshot }), body: reason },
  'GET /api/admin/audit': { expect: adminOnly(200) },

  'GET /admin/login': { expect: everyone(200) },
  'GET /admin/login.js': { expect: everyone(200) },
  'GET /admin/community': { expect: adminOnly(200) },
  'GET /admin/community.js': { expect: adminOnly(200) },
};

/**
 * bull-board's routes (the library's, behind our `/admin` prefix guard): refused to all but admins.
 * An admin is tried on its reads only (its writes pause, empty or obliterate queues).
 */
export function dashboardExpectation(route: RouteInfo): Expectation {
  const params = (): Record<string, string> => ({ queueName: 'media', jobId: 'no-such-job', queueStatus: 'failed', schedulerId: 'no-such-scheduler' });
  if (route.method !== 'GET') return { expect: { anonymous: 401, user: 403, owner: 403 }, params, body: () => ({}) };
  // For an admin a read may find nothing (no such job): anything but a refusal or a failure will do.
  return { expect: { ...adminOnly(200), admin: 'served' }, params };
}

/** The expectation of a route of the table, or undefined when it has none (a test failure). */
export function expectationOf(route: RouteInfo): Expectation | undefined {
  if (route.path === '/admin/queues' || route.path.startsWith('/admin/queues/')) return dashboardExpectation(route);
  return EXPECTED_ACCESS[`${route.method} ${route.path}`];
}

/** Whether `status` is what `expected` allows. */
export const answersAs = (status: number, expected: number | 'served'): boolean =>
  expected === 'served' ? status < 500 && status !== 401 && status !== 403 : status === expected;

/** `path` with its `:params` filled in. */
export function fillPath(path: string, params: Record<string, string | number>): string {
  return path.replace(/:([A-Za-z]+)/g, (_, name: string) => {
    if (!(name in params)) throw new Error(`no value for :${name} of ${path}`);
    return encodeURIComponent(String(params[name]));
  });
}

/** An answer as {@link RawClient} gives it. */
export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The parsed JSON body, or undefined. */
  body: unknown;
}

/**
 * Sends requests with the path exactly as written. A URL-based client (supertest, fetch) would
 * resolve `.` and `..`, `%2e` and backslashes itself, so the server would never see those spellings;
 * this one sends no cookie it was not given either.
 */
export interface RawClient {
  send(method: string, path: string, options?: { headers?: Record<string, string>; json?: unknown }): Promise<RawAnswer>;
  close(): Promise<void>;
}

/** The full app, with queues and blob storage, as server/main.ts builds it, listening on a free port; and its route table. */
export async function fullApp(stack: JobStack): Promise<{ app: Koa; routes: readonly RouteInfo[]; client: RawClient }> {
  const app = createApp({ config: stack.config, knex: stack.knex, logger: pino({ level: 'silent' }), afterCommit: (ids) => stack.fast.submit(ids), queues: stack.producer, blobs: stack.blobs });
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const client: RawClient = {
    send: (method, path, options = {}) =>
      new Promise((resolve, reject) => {
        const payload = options.json === undefined ? undefined : JSON.stringify(options.json);
        const headers = { ...(payload ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}), ...options.headers };
        const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown;
            try {
              body = JSON.parse(text);
            } catch {
              body = undefined;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
          });
        });
        req.on('error', reject);
        req.end(payload);
      }),
    close: async () => {
      agent.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return { app, routes: routeTable(app), client };
}

/** A fresh login session of `user`'s, for a request that logs in or out (so the one in hand stays). */
export async function freshLogin(client: RawClient, user: TestUser): Promise<string> {
  const res = await client.send('POST', '/api/auth/login', { json: { email: user.email, password: user.password } });
  if (res.status !== 200) throw new Error(`login for a fresh session: ${res.status} ${res.text}`);
  return httpSessionCookie(res.headers['set-cookie']);
}

/** The owner's sessions, share links and community snapshots the table's routes act on (a worker copies the snapshots). */
export async function accessFixtures(stack: JobStack): Promise<Fixtures> {
  const secret = `PRIVATE-${randomBytes(6).toString('hex')}`;
  const owner = await registerUser(stack.t);
  const users = { owner, user: await registerUser(stack.t), admin: await registerUser(stack.t) };
  await promote(stack.t, users.admin);
  await serveImages(stack.fixture, 'matrix', 1);
  const make = async (body: Record<string, unknown>): Promise<{ id: number } & Record<string, unknown>> =>
    createSession(stack.t, owner, { subreddits: 'matrix', ...body });
  const priv = (await make({ title: `${secret} private`, aiPrompt: secret })).id;
  const pub = (await make({ title: 'Public one', isPublic: true })).id;
  const doomed = (await make({ title: `${secret} doomed` })).id;
  const linked = (await make({ title: 'Linked one' })).id;
  const share = async (id: number): Promise<string> => {
    const res = await stack.t.http().post(`/api/sessions/${id}/share`).set('Cookie', owner.cookie).expect(200);
    return (res.body as { shareCode: string }).shareCode;
  };
  const code = await share(pub);
  await share(linked);
  const shared = [await make({ title: 'Shared one', shareToCommunity: true }), await make({ title: 'Shared, then removed', shareToCommunity: true })];
  const [snapshot, doomedSnapshot] = shared.map((s) => (s.communitySnapshot as { id: number }).id) as [number, number];
  if (stack.workers.length === 0) await stack.startWorker();
  await waitFor('the snapshots to be copied', async () => {
    const rows = (await stack.knex('community_snapshots').whereIn('id', [snapshot, doomedSnapshot]).pluck('status')) as string[];
    return rows.length === 2 && rows.every((s) => s === 'ready');
  });
  return { users, priv, pub, doomed, linked, code, snapshot, doomedSnapshot, secret };
}

/** What a browser page of this site sends on a write: its own origin (the app's PUBLIC_BASE_URL). */
export const SAME_ORIGIN = 'http://localhost:3000';

/** The headers `actor` sends to `method` a route: JSON, this site's Origin on writes, and its login cookie. */
export async function headersFor(client: RawClient, f: Fixtures, actor: Actor, method: string, ownLogin: boolean): Promise<Record<string, string>> {
  const headers: Record<string, string> = { accept: 'application/json', ...(method !== 'GET' ? { origin: SAME_ORIGIN } : {}) };
  if (actor !== 'anonymous') headers.cookie = ownLogin ? await freshLogin(client, f.users[actor]) : f.users[actor].cookie;
  return headers;
}

/** What a suite of {@link useAccessSuite} works with, once its `before` hook has run. */
export interface AccessSuite {
  stack: JobStack;
  client: RawClient;
  routes: readonly RouteInfo[];
  f: Fixtures;
}

/**
 * A job stack, the full app on a port with its route table, and the table's fixtures, made in a
 * `before` hook of the enclosing `describe` and closed in its `after` hook. Read it from hooks and tests.
 */
export function useAccessSuite(): AccessSuite {
  const suite = {} as Partial<AccessSuite>;
  before(async () => {
    suite.stack = await startJobStack();
    const { client, routes } = await fullApp(suite.stack);
    Object.assign(suite, { client, routes, f: await accessFixtures(suite.stack) });
  });
  after(async () => {
    await suite.client?.close();
    await suite.stack?.close();
  });
  return suite as AccessSuite;
}
