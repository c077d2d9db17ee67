import { expect } from 'chai';
import { loadConfig } from '../config.js';
import { createTestApp, registerUser, type TestUser } from './helpers/app.js';
import { createSession } from './helpers/flows.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('share links: POST|DELETE /api/sessions/:id/share, GET /api/shared/:code(/preview)', () => {
  const t = createTestApp({ env: { PUBLIC_BASE_URL: 'https://show.example.test/' } });
  let owner: TestUser;
  let other: TestUser;

  before(async () => {
    owner = await registerUser(t, { firstName: 'Ada' });
    other = await registerUser(t, { firstName: 'Bob' });
  });

  const share = (who: TestUser, id: number) => t.http().post(`/api/sessions/${id}/share`).set('Cookie', who.cookie);
  const revoke = (who: TestUser, id: number) => t.http().delete(`/api/sessions/${id}/share`).set('Cookie', who.cookie);
  const preview = (code: string) => t.http().get(`/api/shared/${code}/preview`);
  const read = (who: TestUser, code: string) => t.http().get(`/api/shared/${code}`).set('Cookie', who.cookie);

  /** A private session of the owner's with two media items. */
  async function sessionWithMedia(title = 'Evening mix'): Promise<number> {
    const { id } = await createSession(t, owner, { title, subreddits: 'pics', thumbnail: 'https://cdn.example.test/t.png' });
    await t.knex('session_media').insert([
      { session_id: id, media_url: 'https://i.example.test/a.jpg', type: 'image', order: 0 },
      { session_id: id, media_url: 'https://i.example.test/b.jpg', caption: 'second', type: 'image', order: 1 },
    ]);
    return id;
  }

  it('sharing twice gives the same UUID v4 code and a link under PUBLIC_BASE_URL; the session becomes public as a user edit', async () => {
    const id = await sessionWithMedia();
    const before = (await t.knex('sessions').where({ id }).first('version', 'updated_at')) as { version: number; updated_at: Date };
    const first = await share(owner, id).expect(200);
    expect(first.body.shareCode).to.match(UUID_V4);
    expect(first.body).to.deep.equal({ shareCode: first.body.shareCode, shareUrl: `https://show.example.test/shared/${first.body.shareCode}` });
    const second = await share(owner, id).expect(200);
    expect(second.body).to.deep.equal(first.body);

    const after = (await t.knex('sessions').where({ id }).first('is_public', 'version', 'updated_at')) as { is_public: boolean; version: number; updated_at: Date };
    expect(after.is_public).to.equal(true);
    // One edit: the second share found the session public already.
    expect(after.version).to.equal(before.version + 1);
    expect(after.updated_at.getTime()).to.be.greaterThan(before.updated_at.getTime());
    const { body: session } = await t.http().get(`/api/sessions/${id}`).set('Cookie', owner.cookie).expect(200);
    expect(session.session.isPublic).to.equal(true);
    expect(await t.knex('share_codes').where({ session_id: id }).count<{ n: number }[]>({ n: '*' })).to.deep.equal([{ n: 1 }]);
  });

  it('concurrent shares of one session agree on one code', async () => {
    const id = await sessionWithMedia();
    const answers = await Promise.all(Array.from({ length: 10 }, () => share(owner, id)));
    expect(answers.map((a) => a.status)).to.deep.equal(Array(10).fill(200));
    expect(new Set(answers.map((a) => a.body.shareCode as string)).size).to.equal(1);
    expect(await t.knex('share_codes').where({ session_id: id }).count<{ n: number }[]>({ n: '*' })).to.deep.equal([{ n: 1 }]);
  });

  it('the preview answers anyone with exactly title, thumbnail, media count and creator first name', async () => {
    const id = await sessionWithMedia('Previewed');
    const { shareCode } = (await share(owner, id).expect(200)).body as { shareCode: string };
    const { body } = await preview(shareCode).expect(200);
    expect(body).to.deep.equal({ title: 'Previewed', thumbnail: 'https://cdn.example.test/t.png', mediaCount: 2, creatorFirstName: 'Ada' });
    // Upper case is the same UUID.
    expect((await preview(shareCode.toUpperCase()).expect(200)).body).to.deep.equal(body);
  });

  it('a logged-in user reads the session and its media as GET /api/sessions/:id shows them; anonymous callers get 401', async () => {
    const id = await sessionWithMedia();
    const { shareCode } = (await share(owner, id).expect(200)).body as { shareCode: string };
    const { body } = await read(other, shareCode).expect(200);
    const { body: direct } = await t.http().get(`/api/sessions/${id}`).set('Cookie', owner.cookie).expect(200);
    expect(body).to.deep.equal(direct);
    expect(body.media.map((m: { mediaUrl: string }) => m.mediaUrl)).to.deep.equal(['https://i.example.test/a.jpg', 'https://i.example.test/b.jpg']);
    const anonymous = await t.http().get(`/api/shared/${shareCode}`).expect(401);
    expect(anonymous.body.code).to.equal('UNAUTHORIZED');
  });

  it('404 for an unknown, a malformed, a revoked code, and for a session that is no longer public', async () => {
    const unknown = '3b241101-e2bb-4255-8caf-4136c566a962';
    for (const code of [unknown, 'not-a-uuid', '3b241101e2bb42558caf4136c566a962', `${unknown}x`]) {
      expect((await preview(code).expect(404)).body.code, code).to.equal('NOT_FOUND');
      await read(other, code).expect(404);
    }

    const revoked = await sessionWithMedia();
    const { shareCode: revokedCode } = (await share(owner, revoked).expect(200)).body as { shareCode: string };
    await revoke(owner, revoked).expect(204);
    await preview(revokedCode).expect(404);
    await read(other, revokedCode).expect(404);
    // Revoking again is harmless; sharing again gives a new code, and the old one stays dead.
    await revoke(owner, revoked).expect(204);
    const { shareCode: fresh } = (await share(owner, revoked).expect(200)).body as { shareCode: string };
    expect(fresh).to.not.equal(revokedCode);
    await preview(fresh).expect(200);
    await preview(revokedCode).expect(404);

    const privateAgain = await sessionWithMedia();
    const { shareCode: code } = (await share(owner, privateAgain).expect(200)).body as { shareCode: string };
    await t.http().patch(`/api/sessions/${privateAgain}`).set('Cookie', owner.cookie).send({ isPublic: false }).expect(200);
    await preview(code).expect(404);
    await read(other, code).expect(404);
    // Public again: the same live code opens it again.
    await t.http().patch(`/api/sessions/${privateAgain}`).set('Cookie', owner.cookie).send({ isPublic: true }).expect(200);
    await preview(code).expect(200);
  });

  it('only the owner shares or revokes: anyone else gets 404, anonymous callers 401, and nothing changes', async () => {
    const id = await sessionWithMedia();
    expect((await share(other, id).expect(404)).body.code).to.equal('NOT_FOUND');
    await t.http().post(`/api/sessions/${id}/share`).expect(401);
    expect(await t.knex('share_codes').where({ session_id: id }).first()).to.equal(undefined);
    expect(((await t.knex('sessions').where({ id }).first('is_public')) as { is_public: boolean }).is_public).to.equal(false);

    const { shareCode } = (await share(owner, id).expect(200)).body as { shareCode: string };
    await revoke(other, id).expect(404);
    await t.http().delete(`/api/sessions/${id}/share`).expect(401);
    await preview(shareCode).expect(200);
    await share(owner, 2147483646).expect(404);
    await share(owner, 0).expect(400);
  });

  it('deleting the session removes its codes, live and revoked', async () => {
    const id = await sessionWithMedia();
    const { shareCode: old } = (await share(owner, id).expect(200)).body as { shareCode: string };
    await revoke(owner, id).expect(204);
    const { shareCode } = (await share(owner, id).expect(200)).body as { shareCode: string };
    await t.http().delete(`/api/sessions/${id}`).set('Cookie', owner.cookie).expect(204);
    expect(await t.knex('share_codes').whereIn('code', [old, shareCode]).select('code')).to.deep.equal([]);
    await preview(shareCode).expect(404);
  });

  it('PUBLIC_BASE_URL defaults to localhost on PORT, and a bad value is refused by name', () => {
    expect(loadConfig({ PORT: '4100' }).publicBaseUrl).to.equal('http://localhost:4100');
    expect(loadConfig({ PUBLIC_BASE_URL: 'https://show.example.test/app/' }).publicBaseUrl).to.equal('https://show.example.test/app');
    for (const bad of ['show.example.test', 'ftp://show.example.test', 'https://show.example.test/?a=1']) {
      expect(() => loadConfig({ PUBLIC_BASE_URL: bad }), bad).to.throw(/^PUBLIC_BASE_URL: /);
    }
  });
});
