import { expect } from 'chai';
import { createTestApp, promote, registerUser, type TestApp, type TestUser } from '../helpers/app.js';
import { createSession, patch } from '../helpers/flows.js';
import { testKnex } from '../helpers/database.js';

/**
 * Issue 22 §3: moderation belongs to the session, so its owner cannot undo it. Before, an unshare
 * deleted the snapshot that carried the hide or the removal, and sharing again made a fresh, visible one.
 */
describe('security: moderation sticks to the session', function () {
  this.timeout(30_000);
  let t: TestApp;
  let admin: TestUser;
  let owner: TestUser;
  let reader: TestUser;

  before(async () => {
    t = createTestApp({ knex: testKnex() });
    admin = await registerUser(t);
    await promote(t, admin);
    owner = await registerUser(t, { firstName: 'Owner' });
    reader = await registerUser(t);
  });

  /** A public session shared to the community whose snapshot is ready (as if its copy job had run). */
  async function sharedItem(title: string): Promise<{ sessionId: number; snapshotId: number }> {
    const session = await createSession(t, owner, { title, subreddits: 'pics', shareToCommunity: true, isPublic: true });
    const { id: snapshotId } = (await t.knex('community_snapshots').where({ session_id: session.id }).first('id')) as { id: number };
    await t.knex('community_snapshots').where({ id: snapshotId }).update({ status: 'ready', ready_at: new Date() });
    return { sessionId: session.id, snapshotId };
  }
  const snapshotOf = async (sessionId: number) => t.knex('community_snapshots').where({ session_id: sessionId }).first('id', 'is_hidden');
  const ownView = async (who: TestUser, sessionId: number) =>
    (await t.http().get(`/api/sessions/${sessionId}`).set('Cookie', who.cookie).expect(200)).body.session as { communityModeration: { status: string; reason: string; at: string } | null };
  const adminPost = (path: string, reason: string) => t.http().post(path).set('Cookie', admin.cookie).send({ reason });

  it('after a hide, unsharing and sharing again makes a hidden snapshot; the owner is told why; an unhide ends it', async () => {
    const { sessionId, snapshotId } = await sharedItem('Hidden one');
    await adminPost(`/api/admin/community/${snapshotId}/hide`, 'Spam links').expect(200);

    await patch(t, owner, sessionId, { shareToCommunity: false });
    const reshared = await patch(t, owner, sessionId, { shareToCommunity: true });
    const again = await snapshotOf(sessionId);
    expect(again.id).to.equal((reshared.communitySnapshot as { id: number }).id).and.not.equal(snapshotId);
    expect(again.is_hidden, 'the new snapshot is hidden').to.equal(true);
    await t.knex('community_snapshots').where({ id: again.id }).update({ status: 'ready', ready_at: new Date() });
    const feed = await t.http().get(`/api/community?creatorId=${owner.user.id}&pageSize=100`).set('Cookie', reader.cookie).expect(200);
    expect(feed.body.items.map((i: { id: number }) => i.id)).to.not.include(again.id);

    const moderation = (await ownView(owner, sessionId)).communityModeration;
    expect(moderation).to.include({ status: 'hidden', reason: 'Spam links' });
    expect(Date.parse(moderation!.at)).to.be.a('number').and.not.NaN;
    // Only the owner is told: another user reading the public session is not.
    expect((await ownView(reader, sessionId)).communityModeration).to.equal(null);

    await adminPost(`/api/admin/community/${again.id}/unhide`, 'Links removed').expect(200);
    expect((await ownView(owner, sessionId)).communityModeration).to.equal(null);
    await patch(t, owner, sessionId, { shareToCommunity: false });
    await patch(t, owner, sessionId, { shareToCommunity: true });
    expect((await snapshotOf(sessionId)).is_hidden).to.equal(false);
  });

  it('after a removal, sharing again is 403 COMMUNITY_REMOVED with the reason, until an admin lifts it (audited)', async () => {
    const { sessionId, snapshotId } = await sharedItem('Removed one');
    await t.http().delete(`/api/admin/community/${snapshotId}`).set('Cookie', admin.cookie).send({ reason: 'Copyright claim #42' }).expect(200);

    const refused = await t.http().patch(`/api/sessions/${sessionId}`).set('Cookie', owner.cookie).send({ shareToCommunity: true });
    expect(refused.status, refused.text).to.equal(403);
    expect(refused.body).to.include({ error: 'Forbidden', code: 'COMMUNITY_REMOVED' });
    expect(refused.body.message).to.contain('Copyright claim #42');
    expect(await snapshotOf(sessionId)).to.equal(undefined);
    // A full-form save that sends shareToCommunity along with other edits is refused as a whole.
    const fullForm = await t.http().patch(`/api/sessions/${sessionId}`).set('Cookie', owner.cookie).send({ title: 'Renamed', shareToCommunity: true });
    expect(fullForm.status).to.equal(403);
    expect((await ownView(owner, sessionId)).communityModeration).to.include({ status: 'removed', reason: 'Copyright claim #42' });

    // Lifting is an admin's: anyone else is refused and nothing changes.
    expect((await t.http().post(`/api/admin/sessions/${sessionId}/community/lift`).set('Cookie', owner.cookie).send({ reason: 'mine' })).status).to.equal(403);
    expect((await t.http().post(`/api/admin/sessions/${sessionId}/community/lift`).send({ reason: 'anon' })).status).to.equal(401);
    expect((await adminPost(`/api/admin/sessions/${sessionId}/community/lift`, '')).status).to.equal(400);
    expect((await adminPost('/api/admin/sessions/2147483646/community/lift', 'none')).status).to.equal(404);
    expect((await ownView(owner, sessionId)).communityModeration).to.include({ status: 'removed' });

    const lifted = await adminPost(`/api/admin/sessions/${sessionId}/community/lift`, 'Licence shown').expect(200);
    expect(lifted.body).to.deep.include({ action: 'lift', sessionId, snapshotId, isHidden: false });
    const audit = await t.knex('moderation_audit').where({ session_id: sessionId }).orderBy('id');
    expect(audit.map((a: { action: string; reason: string; admin_id: string; snapshot_id: number }) => [a.action, a.reason, a.admin_id, a.snapshot_id])).to.deep.equal([
      ['remove', 'Copyright claim #42', admin.user.id, snapshotId],
      ['lift', 'Licence shown', admin.user.id, snapshotId],
    ]);
    expect(lifted.body.auditId).to.equal(Number(audit[1].id));
    expect((await adminPost(`/api/admin/sessions/${sessionId}/community/lift`, 'again')).body.code).to.equal('NOT_MODERATED');

    expect((await ownView(owner, sessionId)).communityModeration).to.equal(null);
    await patch(t, owner, sessionId, { shareToCommunity: true });
    expect((await snapshotOf(sessionId)).is_hidden).to.equal(false);
  });
});
