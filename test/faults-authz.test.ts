import { createHash, createHmac, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { pino } from 'pino';
import supertest from 'supertest';
import { createApp } from '../server/app.js';
import { promote, registerUser, type TestUser } from './helpers/app.js';
import { createSession } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';

type Actor = 'anonymous' | 'other' | 'owner' | 'admin';
const ACTORS: Actor[] = ['anonymous', 'other', 'owner', 'admin'];

interface Case {
  name: string;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  body?: Record<string, unknown>;
  accept?: string;
  /** Expected status per actor; an actor left out is not tried (a destructive call the owner makes elsewhere). */
  expect: Partial<Record<Actor, number>>;
}

/**
 * Every route × {anonymous, another user, the owner, an admin}: the status each gets, and that no
 * answer carries data of a user it is not for. Then the ways a `connect.sid` can be wrong.
 */
describe('faults: authorisation matrix and session cookies', function () {
  this.timeout(60_000);
  let stack: JobStack;
  let app: ReturnType<typeof supertest.agent>;
  const users = {} as Record<Exclude<Actor, 'anonymous'>, TestUser>;
  /** Text only the owner may ever see: in their private session's title and their email. */
  const secret = `PRIVATE-${randomBytes(6).toString('hex')}`;
  let priv: number;
  let pub: number;
  let doomed: number;
  let shared: number;
  let snapshotId: number;
  let missing: number;

  before(async () => {
    stack = await startJobStack();
    // The full web app, with queues (dashboard, admin API) and blob storage (readiness), as server/main.ts builds it.
    const web = createApp({ config: stack.config, knex: stack.knex, logger: pino({ level: 'silent' }), afterCommit: (ids) => stack.fast.submit(ids), queues: stack.producer, blobs: stack.blobs });
    app = supertest.agent(web.callback());
    users.owner = await registerUser(stack.t, { firstName: secret });
    users.other = await registerUser(stack.t);
    users.admin = await registerUser(stack.t);
    await promote(stack.t, users.admin);
    priv = (await createSession(stack.t, users.owner, { title: `${secret} private`, subreddits: 'pics', aiPrompt: secret })).id;
    pub = (await createSession(stack.t, users.owner, { title: 'Public one', subreddits: 'pics', isPublic: true })).id;
    doomed = (await createSession(stack.t, users.owner, { title: `${secret} doomed`, subreddits: 'pics' })).id;
    const sharedSession = await createSession(stack.t, users.owner, { title: 'Shared one', subreddits: 'pics', shareToCommunity: true });
    shared = sharedSession.id;
    snapshotId = (sharedSession.communitySnapshot as { id: number }).id;
    missing = doomed + 1000;
  });
  after(async () => stack?.close());

  const send = (actor: Actor, c: Pick<Case, 'method' | 'path' | 'body' | 'accept'>) => {
    let req = app[c.method.toLowerCase() as 'get' | 'post' | 'patch' | 'delete'](c.path);
    if (actor !== 'anonymous') req = req.set('Cookie', users[actor].cookie);
    req = req.set('Accept', c.accept ?? 'application/json');
    return c.body ? req.send(c.body) : req;
  };

  /** The matrix; built lazily because the ids exist only after `before`. */
  const cases = (): Case[] => {
    const mine = { anonymous: 401, other: 200, owner: 200, admin: 200 };
    const everyone = { anonymous: 200, other: 200, owner: 200, admin: 200 };
    const adminOnly = (ok: number) => ({ anonymous: 401, other: 403, owner: 403, admin: ok });
    const ownerOnly = (ok: number) => ({ anonymous: 401, other: 404, owner: ok, admin: 404 });
    return [
      { name: 'list own sessions', method: 'GET', path: '/api/sessions', expect: mine },
      { name: 'create a session', method: 'POST', path: '/api/sessions', body: { title: 'New', subreddits: 'pics', thumbnail: 'https://cdn.example.test/t.png' }, expect: { anonymous: 401, other: 201, owner: 201, admin: 201 } },
      { name: 'read a private session', method: 'GET', path: `/api/sessions/${priv}`, expect: { anonymous: 401, other: 404, owner: 200, admin: 404 } },
      { name: 'read a public session', method: 'GET', path: `/api/sessions/${pub}`, expect: mine },
      { name: 'read a missing session', method: 'GET', path: `/api/sessions/${missing}`, expect: { anonymous: 401, other: 404, owner: 404, admin: 404 } },
      { name: 'edit a private session', method: 'PATCH', path: `/api/sessions/${priv}`, body: { isFavorite: true }, expect: ownerOnly(200) },
      { name: 'edit a public session', method: 'PATCH', path: `/api/sessions/${pub}`, body: { isFavorite: true }, expect: ownerOnly(200) },
      { name: 'edit a missing session', method: 'PATCH', path: `/api/sessions/${missing}`, body: { isFavorite: true }, expect: { anonymous: 401, other: 404, owner: 404, admin: 404 } },
      { name: 'delete a private session', method: 'DELETE', path: `/api/sessions/${doomed}`, expect: ownerOnly(204) },
      { name: 'delete a public session (not its owner)', method: 'DELETE', path: `/api/sessions/${pub}`, expect: { anonymous: 401, other: 404, admin: 404 } },
      { name: 'delete a missing session', method: 'DELETE', path: `/api/sessions/${missing}`, expect: { anonymous: 401, other: 404, owner: 404, admin: 404 } },
      { name: 'the logged-in user', method: 'GET', path: '/api/auth/user', expect: mine },
      { name: 'admin overview', method: 'GET', path: '/api/admin/overview', expect: adminOnly(200) },
      { name: 'admin snapshot list', method: 'GET', path: '/api/admin/snapshots', expect: adminOnly(200) },
      { name: 'admin snapshot rerun', method: 'POST', path: `/api/admin/snapshots/${snapshotId}/rerun`, expect: adminOnly(202) },
      { name: 'admin thumbnail regeneration', method: 'POST', path: `/api/admin/sessions/${priv}/thumbnail`, expect: adminOnly(202) },
      { name: 'admin retry failed jobs', method: 'POST', path: '/api/admin/queues/media/retry-failed', expect: adminOnly(202) },
      { name: 'dashboard (API client)', method: 'GET', path: '/admin/queues', expect: adminOnly(200) },
      { name: 'dashboard data', method: 'GET', path: '/admin/queues/api/queues', expect: adminOnly(200) },
      { name: 'dashboard (browser, not logged in)', method: 'GET', path: '/admin/queues', accept: 'text/html', expect: { anonymous: 302 } },
      { name: 'community feed', method: 'GET', path: '/api/community', expect: mine },
      { name: 'a community snapshot not ready yet', method: 'GET', path: `/api/community/sessions/${snapshotId}`, expect: { anonymous: 401, other: 404, owner: 404, admin: 404 } },
      { name: 'categories', method: 'GET', path: '/api/categories', expect: everyone },
      { name: 'OpenAPI document', method: 'GET', path: '/api/openapi.json', expect: everyone },
      { name: 'liveness', method: 'GET', path: '/healthz', expect: everyone },
      { name: 'readiness', method: 'GET', path: '/readyz', expect: everyone },
      { name: 'metrics', method: 'GET', path: '/metrics', expect: everyone },
    ];
  };

  it('every route answers each kind of caller as expected, and nobody but the owner sees the owner’s data', async () => {
    const mismatches: string[] = [];
    const leaks: string[] = [];
    for (const c of cases()) {
      // The owner goes last, so a delete by someone else is tried while the session still exists.
      for (const actor of [...ACTORS.filter((a) => a !== 'owner'), 'owner' as const]) {
        const expected = c.expect[actor];
        if (expected === undefined) continue;
        const res = await send(actor, c);
        if (res.status !== expected) mismatches.push(`${c.name} as ${actor}: ${res.status} (expected ${expected}) ${res.text.slice(0, 200)}`);
        if (res.status >= 400) expect(res.body, `${c.name} as ${actor}: the error envelope`).to.include.keys('error', 'message', 'code');
        const text = `${res.text}${JSON.stringify(res.headers)}`;
        if (actor !== 'owner' && (text.includes(secret) || text.includes(users.owner.email))) leaks.push(`${c.name} as ${actor}: ${res.text.slice(0, 300)}`);
      }
    }
    expect(mismatches, mismatches.join('\n')).to.deep.equal([]);
    expect(leaks, leaks.join('\n')).to.deep.equal([]);

    // What the statuses imply, checked in the database: refused writes wrote nothing.
    const rows = await stack.knex('sessions').whereIn('id', [priv, pub, doomed]).orderBy('id');
    expect(rows.map((r) => r.id)).to.deep.equal([priv, pub]);
    // Only the owner's PATCH landed on each (version 1 → 2).
    expect(rows.map((r) => r.version)).to.deep.equal([2, 2]);
    expect(rows.every((r) => r.is_favorite)).to.equal(true);
    // Each caller's list holds their own sessions only.
    for (const actor of ['other', 'admin'] as const) {
      const list = await send(actor, { method: 'GET', path: '/api/sessions' }).expect(200);
      expect(list.body.every((s: { userId: string }) => s.userId === users[actor].user.id)).to.equal(true);
    }
    const own = await send('owner', { method: 'GET', path: '/api/sessions' }).expect(200);
    expect(own.body.map((s: { id: number }) => s.id)).to.include.members([priv, pub, shared]);
    // The logged-in user is always the caller.
    for (const actor of ['other', 'owner', 'admin'] as const) {
      expect((await send(actor, { method: 'GET', path: '/api/auth/user' })).body.id).to.equal(users[actor].user.id);
    }
    // A browser that is not logged in is sent to the login page, not shown the dashboard.
    const html = await send('anonymous', { method: 'GET', path: '/admin/queues', accept: 'text/html' });
    expect(html.headers.location).to.match(/^\/admin\/login\?next=/);
  });

  it('someone else’s session answers exactly as a missing one (no existence leak)', async () => {
    // The message names the id asked for; everything else must be the same byte for byte.
    const normalise = (res: supertest.Response, id: number) =>
      JSON.stringify({ status: res.status, body: res.body, type: res.headers['content-type'], etag: res.headers.etag ?? null }).replace(
        new RegExp(`Session ${id}\\b`, 'g'),
        'Session :id',
      );
    for (const actor of ['other', 'admin', 'anonymous'] as const) {
      for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
        const body = method === 'PATCH' ? { title: 'x' } : undefined;
        const theirs = await send(actor, { method, path: `/api/sessions/${priv}`, ...(body ? { body } : {}) });
        const none = await send(actor, { method, path: `/api/sessions/${missing}`, ...(body ? { body } : {}) });
        expect(normalise(theirs, priv), `${method} as ${actor}`).to.equal(normalise(none, missing));
      }
    }
  });

  describe('session cookies', () => {
    const value = (u: TestUser): string => u.cookie.slice('connect.sid='.length);
    const storeKey = (cookieValue: string): string => createHash('sha256').update(cookieValue.slice(0, cookieValue.lastIndexOf('.'))).digest('hex');
    const sign = (id: string, key: string): string => `${id}.${createHmac('sha256', key).update(id).digest('base64url')}`;

    /** Every way the cookie is presented must be refused: the user endpoint, a list, a write. */
    async function refused(cookie: string, label: string): Promise<void> {
      for (const [method, path, body] of [
        ['GET', '/api/auth/user', undefined],
        ['GET', '/api/sessions', undefined],
        ['PATCH', `/api/sessions/${priv}`, { title: 'hijacked' }],
      ] as const) {
        let req = app[method.toLowerCase() as 'get' | 'patch'](path).set('Cookie', cookie);
        if (body) req = req.send(body);
        const res = await req;
        expect(res.status, `${label}: ${method} ${path} → ${res.text.slice(0, 200)}`).to.equal(401);
        expect(res.body.code).to.equal('UNAUTHORIZED');
      }
    }

    it('tampered, expired, forged and logged-out connect.sid values are all 401, and nothing is written', async () => {
      const before = await stack.knex('sessions').where({ id: priv }).first();
      const victim = await stack.t.http().post('/api/auth/login').send({ email: users.owner.email, password: users.owner.password }).expect(200);
      const good = value({ ...users.owner, cookie: victim.headers['set-cookie']![0]!.split(';')[0]! });
      const [id, sig] = good.split('.') as [string, string];
      const flip = (s: string, at: number): string => s.slice(0, at) + (s[at] === 'A' ? 'B' : 'A') + s.slice(at + 1);

      const tampered = [
        `${id}.${flip(sig, sig.length - 1)}`,
        `${flip(id, 0)}.${sig}`,
        `${id}.${sig.slice(0, -1)}`,
        `${id}.${sig}x`,
        `${id}${sig}`,
        id,
        `.${sig}`,
        `${id}.`,
        `${id}.${sig}.${sig}`,
        `${good}${'A'.repeat(10_000)}`,
        `%E0%A4%A${good}`,
        encodeURIComponent(`${id}\u0000.${sig}`),
      ];
      for (const [i, v] of tampered.entries()) await refused(`connect.sid=${v}`, `tampered #${i}`);

      const forged = [
        // Well formed, random.
        `${randomBytes(32).toString('base64url')}.${randomBytes(32).toString('base64url')}`,
        // Correctly signed with the real secret, but never issued: the store does not know it.
        sign(randomBytes(32).toString('base64url'), 'test-secret-a'),
        // Signed with a secret that is not configured.
        sign(id, 'not-the-secret'),
        // The store's key for a live session, presented as a cookie.
        storeKey(good),
        sign(storeKey(good), 'test-secret-a'),
      ];
      for (const [i, v] of forged.entries()) await refused(`connect.sid=${v}`, `forged #${i}`);

      // Still valid up to here: the refusals above did not log the victim out.
      await app.get('/api/auth/user').set('Cookie', `connect.sid=${good}`).expect(200);

      // Expired in the store.
      await stack.knex('http_sessions').where({ id_hash: storeKey(good) }).update({ expires_at: stack.knex.raw(`now() - interval '1 minute'`) });
      await refused(`connect.sid=${good}`, 'expired');

      // Logged out: the cookie still in hand, the session revoked.
      const again = await stack.t.http().post('/api/auth/login').send({ email: users.owner.email, password: users.owner.password }).expect(200);
      const second = again.headers['set-cookie']![0]!.split(';')[0]!;
      await app.get('/api/auth/user').set('Cookie', second).expect(200);
      await app.post('/api/auth/logout').set('Cookie', second).expect(200);
      await refused(second, 'logged out');

      // A user who no longer exists.
      const gone = await registerUser(stack.t);
      await stack.knex('users').where({ id: gone.user.id }).del();
      await refused(gone.cookie, 'deleted user');

      const after = await stack.knex('sessions').where({ id: priv }).first();
      expect(after.version).to.equal(before.version);
      expect(after.title).to.equal(before.title);
      // The owner's own cookie from registration still works: refusals touched no other session.
      await app.get('/api/auth/user').set('Cookie', users.owner.cookie).expect(200);
    });
  });
});
