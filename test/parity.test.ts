import { expect } from 'chai';
import { createTestApp, registerUser } from './helpers/app.js';
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
});
