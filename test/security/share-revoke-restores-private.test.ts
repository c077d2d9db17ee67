import { expect } from 'chai';
import { createTestApp, registerUser, type TestApp, type TestUser } from '../helpers/app.js';
import { createSession, patch } from '../helpers/flows.js';
import { testKnex } from '../helpers/database.js';

/**
 * Issue 22 §3: revoking a share link puts `isPublic` back to what it was before the link. Before,
 * the share made a private session public and the revocation left it so: every logged-in user could
 * still read it by walking ids. An owner's own change of `isPublic` while the link is live wins.
 */
describe('security: revoking a share link restores isPublic', function () {
  this.timeout(30_000);
  let t: TestApp;
  let owner: TestUser;
  let other: TestUser;

  before(async () => {
    t = createTestApp({ knex: testKnex() });
    owner = await registerUser(t);
    other = await registerUser(t);
  });

  const share = (id: number) => t.http().post(`/api/sessions/${id}/share`).set('Cookie', owner.cookie).expect(200);
  const revoke = (id: number) => t.http().delete(`/api/sessions/${id}/share`).set('Cookie', owner.cookie).expect(204);
  const isPublic = async (id: number): Promise<boolean> =>
    ((await t.http().get(`/api/sessions/${id}`).set('Cookie', owner.cookie).expect(200)).body.session as { isPublic: boolean }).isPublic;
  const readByOther = async (id: number): Promise<number> => (await t.http().get(`/api/sessions/${id}`).set('Cookie', other.cookie)).status;

  it('a private session is private again after the revocation: another user reads 404 by id', async () => {
    const { id } = await createSession(t, owner, { title: 'Private', subreddits: 'pics' });
    await share(id);
    expect(await readByOther(id)).to.equal(200);
    await revoke(id);
    expect(await isPublic(id)).to.equal(false);
    expect(await readByOther(id)).to.equal(404);
  });

  it('a session public before the link stays public; a repeated share changes nothing; a repeated revoke is harmless', async () => {
    const { id } = await createSession(t, owner, { title: 'Public', subreddits: 'pics', isPublic: true });
    await share(id);
    await share(id);
    await revoke(id);
    await revoke(id);
    expect(await isPublic(id)).to.equal(true);

    const { id: privateId } = await createSession(t, owner, { title: 'Shared twice', subreddits: 'pics' });
    const first = (await share(privateId)).body.shareCode as string;
    expect((await share(privateId)).body.shareCode).to.equal(first);
    await revoke(privateId);
    expect(await isPublic(privateId)).to.equal(false);
  });

  it("the owner's own change of isPublic while the link is live wins; a full-form save sending the same value is no change", async () => {
    const { id } = await createSession(t, owner, { title: 'Owner decides', subreddits: 'pics' });
    await share(id);
    // Sending the value back, as a full-form client does, is not a decision.
    await patch(t, owner, id, { title: 'Owner decides', isPublic: true });
    await patch(t, owner, id, { isPublic: false });
    await patch(t, owner, id, { isPublic: true });
    await revoke(id);
    expect(await isPublic(id)).to.equal(true);

    const { id: again } = await createSession(t, owner, { title: 'Made private, shared again', subreddits: 'pics' });
    await share(again);
    await patch(t, owner, again, { isPublic: true, title: 'Full form' });
    await revoke(again);
    expect(await isPublic(again), 'a full-form save did not pin it public').to.equal(false);
    await share(again);
    await patch(t, owner, again, { isPublic: false });
    // Shared again while private: the link makes it public, and its revocation private again.
    await share(again);
    expect(await isPublic(again)).to.equal(true);
    await revoke(again);
    expect(await isPublic(again)).to.equal(false);
  });
});
