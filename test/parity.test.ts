import { expect } from 'chai';
import { createTestApp, httpSessionCookie, registerUser } from './helpers/app.js';
import { Client, expectEnvelope, type Body } from './helpers/session-state.js';

/** Details of the reference API that its clients depend on, each checked against the running app. */
describe('parity with the reference API', () => {
  const t = createTestApp();
  let owner: Client;
  let other: Client;

  before(async () => {
    owner = new Client(t, await registerUser(t));
    other = new Client(t, await registerUser(t));
  });

  it('media items carry their sessionId', async () => {
    const s = await owner.create();
    await t.knex('session_media').insert([
      { session_id: s.id, media_url: 'https://i.example.test/a.jpg', type: 'image', order: 0 },
      { session_id: s.id, media_url: 'https://i.example.test/b.gif', type: 'gif', order: 1 },
    ]);
    const res = await owner.get(s.id);
    expect(res.status, res.text).to.equal(200);
    expect((res.body.media as Body[]).map((m) => [m.sessionId, m.mediaUrl])).to.deep.equal([
      [s.id, 'https://i.example.test/a.jpg'],
      [s.id, 'https://i.example.test/b.gif'],
    ]);
  });

  it('reads need a login: the community feed, a community item and a session answer 401 to anonymous callers', async () => {
    const s = await owner.create();
    await owner.patchOk(s.id, { isPublic: true });
    for (const path of ['/api/community', '/api/community?sort=top', '/api/community/sessions/1', `/api/sessions/${s.id}`]) {
      const body = expectEnvelope(await t.http().get(path), 401, 'UNAUTHORIZED');
      expect(body.error, path).to.equal('Unauthorized');
    }
    expect((await t.http().get('/api/community').set('Cookie', other.user.cookie)).status).to.equal(200);
  });

  it('a public session is readable by any logged-in user; a private one only by its owner', async () => {
    const s = await owner.create({ title: 'Shown' });
    expectEnvelope(await other.get(s.id), 404, 'NOT_FOUND');
    await owner.patchOk(s.id, { isPublic: true });
    const res = await other.get(s.id);
    expect(res.status, res.text).to.equal(200);
    expect(res.body.session).to.include({ id: s.id, title: 'Shown', userId: owner.user.user.id, isPublic: true });
  });

  describe('POST /api/login (the reference alias)', () => {
    const login = (body: Record<string, unknown>) => t.http().post('/api/login').send(body);

    it('logs in, sets the cookie and redirects 302 to a same-site redirect path, or to /', async () => {
      const u = owner.user;
      for (const [redirect, location] of [
        ['/library?tab=mine#top', '/library?tab=mine#top'],
        [undefined, '/'],
        ['/', '/'],
      ] as const) {
        const res = await login({ email: u.email, password: u.password, ...(redirect !== undefined ? { redirect } : {}) });
        expect(res.status, res.text).to.equal(302);
        expect(res.headers.location).to.equal(location);
        const cookie = httpSessionCookie(res.headers['set-cookie']);
        const me = await t.http().get('/api/auth/user').set('Cookie', cookie);
        expect(me.status).to.equal(200);
        expect(me.body).to.include({ id: u.user.id, email: u.email });
      }
    });

    it('never redirects off the site: other hosts, schemes and odd paths go to /', async () => {
      const u = owner.user;
      for (const redirect of ['//evil.example/x', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', 'relative/path', '', ' /x', '/x\ny']) {
        const res = await login({ email: u.email, password: u.password, redirect });
        expect(res.status, `${JSON.stringify(redirect)}: ${res.text}`).to.equal(302);
        expect(res.headers.location, JSON.stringify(redirect)).to.equal('/');
      }
    });

    it('answers 401 {"message": "Invalid credentials"} (in the error envelope) and sets no login cookie', async () => {
      const res = await login({ email: owner.user.email, password: 'not-the-password', redirect: '/library' });
      expect(res.status).to.equal(401);
      expect(res.body).to.deep.equal({ error: 'Unauthorized', message: 'Invalid credentials', code: 'UNAUTHORIZED' });
      expect(res.headers.location).to.equal(undefined);
      expect(String(res.headers['set-cookie'] ?? '')).to.not.match(/connect\.sid=[^;]/);
    });

    it('POST /api/auth/login keeps its JSON answer', async () => {
      const ok = await t.http().post('/api/auth/login').send({ email: owner.user.email, password: owner.user.password });
      expect(ok.status).to.equal(200);
      expect(ok.body).to.include({ id: owner.user.user.id, email: owner.user.email });
      const bad = await t.http().post('/api/auth/login').send({ email: owner.user.email, password: 'not-the-password' });
      expect(bad.status).to.equal(401);
      expect(bad.body).to.deep.equal({ error: 'Unauthorized', message: 'Invalid email or password', code: 'UNAUTHORIZED' });
    });
  });

  describe('POST /api/login as a browser <form> posts it (application/x-www-form-urlencoded)', () => {
    const form = (fields: Record<string, string>, from = `203.0.113.${Math.floor(Math.random() * 250) + 1}`) =>
      proxied.http().post('/api/login').set('X-Forwarded-For', from).type('form').send(new URLSearchParams(fields).toString());
    const proxied = createTestApp({ env: { TRUST_PROXY: '1' } });

    it('logs in: 302 to the same-site redirect (or /), and the connect.sid cookie then authenticates', async () => {
      const u = await registerUser(proxied);
      for (const [redirect, location] of [
        ['/library', '/library'],
        ['https://evil.example/', '/'],
        [undefined, '/'],
      ] as const) {
        const res = await form({ email: u.email, password: u.password, ...(redirect !== undefined ? { redirect } : {}) });
        expect(res.status, res.text).to.equal(302);
        expect(res.headers.location).to.equal(location);
        const me = await proxied.http().get('/api/auth/user').set('Cookie', httpSessionCookie(res.headers['set-cookie']));
        expect(me.status).to.equal(200);
        expect(me.body).to.include({ id: u.user.id });
      }
    });

    it('a wrong password is the JSON body’s 401 "Invalid credentials", with no cookie', async () => {
      const u = await registerUser(proxied);
      const res = await form({ email: u.email, password: 'not-the-password' });
      expect(res.status).to.equal(401);
      expect(res.body).to.deep.equal({ error: 'Unauthorized', message: 'Invalid credentials', code: 'UNAUTHORIZED' });
      expect(String(res.headers['set-cookie'] ?? '')).to.not.match(/connect\.sid=[^;]/);
    });

    it('counts against the same login limit as JSON logins: 5 failures, then 429 for either', async () => {
      const u = await registerUser(proxied);
      const from = `198.51.100.${Math.floor(Math.random() * 250) + 1}`;
      for (let i = 0; i < 5; i++) {
        const res = i % 2 ? await form({ email: u.email, password: 'wrong' }, from) : await proxied.http().post('/api/login').set('X-Forwarded-For', from).send({ email: u.email, password: 'wrong' });
        expect(res.status).to.equal(401);
      }
      const limited = await form({ email: u.email, password: u.password }, from);
      expect(limited.status).to.equal(429);
      expect(limited.body).to.include({ code: 'RATE_LIMITED' });
      expect(limited.headers['x-ratelimit-limit']).to.equal('5');
    });

    it('the body limit, malformed fields and the envelope apply; no other write takes a form', async () => {
      const big = await proxied.http().post('/api/login').type('form').send(`email=a%40b.c&password=${'x'.repeat(200 * 1024)}`);
      expect(big.status).to.equal(413);
      expect(big.body).to.include({ code: 'PAYLOAD_TOO_LARGE' });
      const twice = await proxied.http().post('/api/login').type('form').send('email=a%40b.c&email=d%40e.f&password=secret-secret');
      expect(twice.status).to.equal(400);
      expect(twice.body.details.fields[0]).to.include({ pointer: '/email' });
      const proto = await proxied.http().post('/api/login').type('form').send('__proto__=x&email=a%40b.c&password=secret-secret');
      expect(proto.status).to.equal(400);
      const u = await registerUser(proxied);
      for (const [method, path] of [['post', '/api/auth/login'], ['post', '/api/sessions'], ['post', '/api/auth/register']] as const) {
        const res = await proxied.http()[method](path).set('Cookie', u.cookie).type('form').send(`email=${encodeURIComponent(u.email)}&password=x`);
        expect(res.status, path).to.equal(415);
        expect(res.body).to.include({ code: 'UNSUPPORTED_MEDIA_TYPE' });
      }
    });
  });

  describe('GET /api/sessions: no silent cut at 100', () => {
    /** A fresh user with `count` sessions, written straight to the table (the API would take minutes). */
    async function userWithSessions(count: number): Promise<Client> {
      const c = new Client(t, await registerUser(t));
      const template = await t.knex('sessions').where({ id: (await c.create()).id }).first('category_id', 'category_source', 'caption_theme');
      await t.knex('sessions').where({ user_id: c.user.user.id }).delete();
      const rows = Array.from({ length: count }, (_, i) => ({ ...template, user_id: c.user.user.id, title: `S${i}`, subreddits: ['pics'] }));
      for (let i = 0; i < rows.length; i += 500) await t.knex('sessions').insert(rows.slice(i, i + 500));
      return c;
    }
    const list = (c: Client, query = '') => t.http().get(`/api/sessions${query}`).set('Cookie', c.user.cookie);

    it('without paging parameters returns every session (150 here), with X-Total-Count and no Link', async () => {
      const c = await userWithSessions(150);
      const res = await list(c);
      expect(res.status).to.equal(200);
      expect(res.body).to.be.an('array').with.length(150);
      expect(res.headers['x-total-count']).to.equal('150');
      expect(res.headers.link).to.equal(undefined);
    });

    it('past the cap of 1,000: X-Total-Count and a Link rel="next" that gives the rest, filters kept', async () => {
      const c = await userWithSessions(1_001);
      const first = await list(c, '?categorySlug=uncategorized');
      expect(first.status).to.equal(200);
      expect(first.body).to.have.length(1_000);
      expect(first.headers['x-total-count']).to.equal('1001');
      const link = /^<([^>]+)>; rel="next"$/.exec(first.headers.link as string);
      expect(link, first.headers.link as string).to.not.equal(null);
      const next = new URL(link![1]!, 'http://x');
      expect([next.pathname, next.searchParams.get('categorySlug'), next.searchParams.get('page'), next.searchParams.get('pageSize')]).to.deep.equal(['/api/sessions', 'uncategorized', '2', '1000']);
      const rest = await t.http().get(link![1]!).set('Cookie', c.user.cookie);
      expect(rest.status).to.equal(200);
      expect(rest.body).to.have.length(1);
      expect(rest.headers.link).to.equal(undefined);
      const all = new Set([...(first.body as Body[]), ...(rest.body as Body[])].map((s) => s.id));
      expect(all.size).to.equal(1_001);
    });
  });

  it('categorySlug takes up to 120 characters (an unknown one matches nothing); 121 is refused', async () => {
    const ok = await t.http().get(`/api/sessions?categorySlug=${'a'.repeat(120)}`).set('Cookie', owner.user.cookie);
    expect(ok.status, ok.text).to.equal(200);
    expect(ok.body).to.deep.equal([]);
    const tooLong = await t.http().get(`/api/sessions?categorySlug=${'a'.repeat(121)}`).set('Cookie', owner.user.cookie);
    expectEnvelope(tooLong, 400, 'VALIDATION_ERROR');
  });
});
