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
});
