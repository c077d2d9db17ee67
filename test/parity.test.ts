import { expect } from 'chai';
import { createTestApp, registerUser } from './helpers/app.js';
import { Client, type Body } from './helpers/session-state.js';

/** Details of the reference API that its clients depend on, each checked against the running app. */
describe('parity with the reference API', () => {
  const t = createTestApp();
  let owner: Client;

  before(async () => {
    owner = new Client(t, await registerUser(t));
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
});
