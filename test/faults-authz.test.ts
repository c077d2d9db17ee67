import { createHash, createHmac, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { pino } from 'pino';
import supertest from 'supertest';
import { createApp } from '../server/app.js';
import { promote, registerUser, type TestUser } from './helpers/app.js';
import { createSession } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';

type Actor = 'anonymous' | 'other' | 'owner' | 'admin';

interface Case {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  body?: Record<string, unknown>;
  accept?: string;
}

/**
 * Someone else's session answers as a missing one, and the ways a `connect.sid` can be wrong. (The
 * matrix of every route × every kind of caller is generated from the route table:
 * test/security/access-matrix.test.ts.)
 */
describe('faults: existence leaks and session cookies', function () {
  this.timeout(60_000);
  let stack: JobStack;
  let app: ReturnType<typeof supertest.agent>;
  const users = {} as Record<Exclude<Actor, 'anonymous'>, TestUser>;
  /** Text only the owner may ever see: in their private session's title and their email. */
  const secret = `PRIVATE-${randomBytes(6).toString('hex')}`;
  let priv: number;
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
    missing = priv + 1000;
  });
  after(async () => stack?.close());

  const send = (actor: Actor, c: Pick<Case, 'method' | 'path' | 'body' | 'accept'>) => {
    let req = app[c.method.toLowerCase() as 'get' | 'post' | 'patch' | 'delete'](c.path);
    if (actor !== 'anonymous') req = req.set('Cookie', users[actor].cookie);
    req = req.set('Accept', c.accept ?? 'application/json');
    return c.body ? req.send(c.body) : req;
  };

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
