import { expect } from 'chai';
import { createTestApp, promote, registerUser, type TestApp, type TestUser } from './helpers/app.js';
import { createSession, patch } from './helpers/flows.js';
import { testKnex } from './helpers/database.js';

interface FeedPage {
  items: { id: number; isHidden: boolean }[];
  total: number;
}
interface AuditEntry {
  id: number;
  action: string;
  adminId: string;
  adminEmail: string | null;
  snapshotId: number;
  sessionId: number | null;
  title: string | null;
  reason: string;
  createdAt: string;
}

describe('moderation: admins hide, unhide and remove community items, each audited', function () {
  this.timeout(30_000);
  let t: TestApp;
  let admin: TestUser;
  let user: TestUser;
  let creator: TestUser;

  before(async () => {
    t = createTestApp({ knex: testKnex() });
    admin = await registerUser(t);
    await promote(t, admin);
    user = await registerUser(t);
    creator = await registerUser(t, { firstName: 'Creator' });
  });

  /** A shared session whose snapshot is ready (as if its copy job had run), and the snapshot's id. */
  async function readyItem(title = 'Moderated'): Promise<{ sessionId: number; snapshotId: number }> {
    const session = await createSession(t, creator, { title, subreddits: 'pics', shareToCommunity: true });
    const snapshot = (await t.knex('community_snapshots').where({ session_id: session.id }).first('id')) as { id: number };
    await t.knex('community_snapshots').where({ id: snapshot.id }).update({ status: 'ready', ready_at: new Date() });
    return { sessionId: session.id, snapshotId: snapshot.id };
  }

  const as = (who: TestUser | null) => {
    const withCookie = <R extends { set: (k: string, v: string) => R }>(r: R): R => (who ? r.set('Cookie', who.cookie) : r);
    return {
      get: (url: string) => withCookie(t.http().get(url)),
      post: (url: string, body?: object) => withCookie(t.http().post(url)).send(body),
      delete: (url: string, body?: object) => withCookie(t.http().delete(url)).send(body),
    };
  };
  const feedOf = async (who: TestUser): Promise<FeedPage> =>
    (await as(who).get(`/api/community?creatorId=${creator.user.id}&pageSize=100`).expect(200)).body as FeedPage;

  it('refuses anonymous callers (401) and non-admins (403), changing nothing', async () => {
    const { snapshotId } = await readyItem();
    const requests = (who: TestUser | null) => [
      as(who).post(`/api/admin/community/${snapshotId}/hide`, { reason: 'spam' }),
      as(who).post(`/api/admin/community/${snapshotId}/unhide`, { reason: 'spam' }),
      as(who).delete(`/api/admin/community/${snapshotId}`, { reason: 'spam' }),
      as(who).get('/api/admin/audit'),
    ];
    for (const [who, status, code] of [
      [null, 401, 'UNAUTHORIZED'],
      [user, 403, 'FORBIDDEN'],
    ] as const) {
      for (const res of await Promise.all(requests(who))) {
        expect(res.status, res.text).to.equal(status);
        expect(res.body.code).to.equal(code);
      }
    }
    const row = await t.knex('community_snapshots').where({ id: snapshotId }).first();
    expect(row.is_hidden).to.equal(false);
    expect(await t.knex('moderation_audit').where({ snapshot_id: snapshotId })).to.deep.equal([]);
  });

  it('a missing, empty, blank, over-long or non-string reason is a 400 naming the field; an unknown item is a 404', async () => {
    const { snapshotId } = await readyItem();
    for (const body of [undefined, {}, { reason: '' }, { reason: '   \n ' }, { reason: 'x'.repeat(501) }, { reason: 42 }, { reason: 'ok', extra: 1 }]) {
      for (const res of [
        await as(admin).post(`/api/admin/community/${snapshotId}/hide`, body),
        await as(admin).delete(`/api/admin/community/${snapshotId}`, body),
      ]) {
        expect(res.status, `${JSON.stringify(body)}: ${res.text}`).to.equal(400);
        expect(res.body).to.include({ error: 'Validation Error', code: 'VALIDATION_ERROR' });
        expect(res.body.details.fields.map((f: { pointer: string }) => f.pointer)).to.include.oneOf(['/reason', '/extra']);
      }
    }
    // 500 characters after trimming is within the limit.
    const padded = `  ${'y'.repeat(500)}  `;
    expect((await as(admin).post(`/api/admin/community/${snapshotId}/hide`, { reason: padded })).status).to.equal(200);
    const audit = await t.knex('moderation_audit').where({ snapshot_id: snapshotId });
    expect(audit.map((a: { reason: string }) => a.reason)).to.deep.equal(['y'.repeat(500)]);
    expect((await t.knex('community_snapshots').where({ id: snapshotId }).first()).is_hidden).to.equal(true);

    const missing = await as(admin).post('/api/admin/community/2147483646/hide', { reason: 'spam' });
    expect(missing.status).to.equal(404);
    expect((await as(admin).delete('/api/admin/community/2147483646', { reason: 'spam' })).status).to.equal(404);
  });

  it('hide: gone from a non-admin feed and detail (404), present for admins with isHidden; unhide brings it back', async () => {
    const { snapshotId, sessionId } = await readyItem('To hide');
    const visible = await readyItem('Stays visible');

    const hidden = await as(admin).post(`/api/admin/community/${snapshotId}/hide`, { reason: 'Off-topic' }).expect(200);
    expect(hidden.body).to.deep.include({ action: 'hide', snapshotId, sessionId, isHidden: true });
    expect(hidden.body.auditId).to.be.a('number');

    const userFeed = await feedOf(user);
    expect(userFeed.items.map((i) => i.id)).to.include(visible.snapshotId).and.not.include(snapshotId);
    expect(userFeed.items.every((i) => i.isHidden === false)).to.equal(true);
    const detail = await as(user).get(`/api/community/sessions/${snapshotId}`);
    expect(detail.status).to.equal(404);
    expect(detail.body.code).to.equal('NOT_FOUND');
    // Nor can it be liked: that would tell a non-admin it exists.
    expect((await as(user).post(`/api/community/sessions/${snapshotId}/like`)).status).to.equal(404);

    const adminFeed = await feedOf(admin);
    expect(adminFeed.items.find((i) => i.id === snapshotId)).to.include({ isHidden: true });
    expect(adminFeed.items.find((i) => i.id === visible.snapshotId)).to.include({ isHidden: false });
    expect(adminFeed.total - userFeed.total).to.equal(adminFeed.items.filter((i) => i.isHidden).length).and.to.be.above(0);
    expect((await as(admin).get(`/api/community/sessions/${snapshotId}`).expect(200)).body).to.include({ id: snapshotId, isHidden: true });

    const unhidden = await as(admin).post(`/api/admin/community/${snapshotId}/unhide`, { reason: 'Appeal accepted' }).expect(200);
    expect(unhidden.body).to.deep.include({ action: 'unhide', snapshotId, isHidden: false });
    expect((await feedOf(user)).items.find((i) => i.id === snapshotId)).to.include({ isHidden: false });
    expect((await as(user).get(`/api/community/sessions/${snapshotId}`).expect(200)).body.isHidden).to.equal(false);
    expect(await t.knex('community_snapshots').where({ id: snapshotId }).first('is_hidden', 'hidden_at')).to.deep.equal({ is_hidden: false, hidden_at: null });
  });

  it("remove: the snapshot goes, its purge job is in the outbox, the session's shareToCommunity is false (new ETag)", async () => {
    const { snapshotId, sessionId } = await readyItem('To remove');
    const before = await t.http().get(`/api/sessions/${sessionId}`).set('Cookie', creator.cookie).expect(200);
    const staleEtag = before.headers.etag as string;

    const removed = await as(admin).delete(`/api/admin/community/${snapshotId}`, { reason: 'Copyright claim' }).expect(200);
    expect(removed.body).to.deep.include({ action: 'remove', snapshotId, sessionId });
    expect(removed.body.purgeJobId).to.equal(`outbox-${removed.body.purgeOutboxId}`);

    expect(await t.knex('community_snapshots').where({ id: snapshotId }).first()).to.equal(undefined);
    expect(await t.knex('community_snapshot_media').where({ snapshot_id: snapshotId })).to.deep.equal([]);
    const outbox = await t.knex('job_outbox').where({ id: removed.body.purgeOutboxId }).first();
    expect(outbox).to.deep.include({ queue: 'snapshots', job_name: 'purge', payload: { snapshotId } });

    const after = await t.http().get(`/api/sessions/${sessionId}`).set('Cookie', creator.cookie).expect(200);
    expect(after.body.session).to.include({ shareToCommunity: false, communitySnapshot: null });
    expect(after.headers.etag).to.not.equal(staleEtag);
    // The owner's stale full-form save cannot quietly share the removed item again.
    const stale = await t.http().patch(`/api/sessions/${sessionId}`).set('Cookie', creator.cookie).set('If-Match', staleEtag).send({ shareToCommunity: true });
    expect(stale.status).to.equal(412);

    for (const who of [user, admin]) expect((await as(who).get(`/api/community/sessions/${snapshotId}`)).status).to.equal(404);
    expect((await feedOf(admin)).items.map((i) => i.id)).to.not.include(snapshotId);
    // Removing it again: nothing left to remove.
    expect((await as(admin).delete(`/api/admin/community/${snapshotId}`, { reason: 'again' })).status).to.equal(404);
    // The removal stays with the session: sharing again is refused until an admin lifts it
    // (test/security/moderation-sticks.test.ts), then it is a new snapshot.
    expect((await patch(t, creator, sessionId, { shareToCommunity: true }, 403)).code).to.equal('COMMUNITY_REMOVED');
    await as(admin).post(`/api/admin/sessions/${sessionId}/community/lift`, { reason: 'Licence shown' }).expect(200);
    const reshared = await patch(t, creator, sessionId, { shareToCommunity: true });
    expect((reshared.communitySnapshot as { id: number }).id).to.not.equal(snapshotId);
  });

  it('the audit lists each action newest first with who, what, target, when and why, in pages', async () => {
    const { snapshotId, sessionId } = await readyItem('Audited');
    const started = Date.now();
    await as(admin).post(`/api/admin/community/${snapshotId}/hide`, { reason: 'first: hide' }).expect(200);
    await as(admin).post(`/api/admin/community/${snapshotId}/unhide`, { reason: 'second: unhide' }).expect(200);
    await as(admin).delete(`/api/admin/community/${snapshotId}`, { reason: '  third: remove  ' }).expect(200);

    const page = (await as(admin).get('/api/admin/audit?pageSize=3').expect(200)).body as { items: AuditEntry[]; total: number; page: number; pageSize: number; totalPages: number };
    expect(page).to.include({ page: 1, pageSize: 3, totalPages: Math.ceil(page.total / 3) });
    expect(page.items.map((e) => [e.action, e.reason])).to.deep.equal([
      ['remove', 'third: remove'],
      ['unhide', 'second: unhide'],
      ['hide', 'first: hide'],
    ]);
    for (const e of page.items) {
      expect(e).to.include({ adminId: admin.user.id, adminEmail: admin.email, snapshotId, sessionId, title: 'Audited' });
      expect(Date.parse(e.createdAt)).to.be.at.least(started - 5_000);
    }

    const second = (await as(admin).get('/api/admin/audit?pageSize=1&page=2').expect(200)).body as { items: AuditEntry[]; total: number; totalPages: number };
    expect(second.items.map((e) => e.id)).to.deep.equal([page.items[1]!.id]);
    expect(second).to.include({ total: page.total, totalPages: page.total });
    expect((await as(admin).get('/api/admin/audit?pageSize=0')).status).to.equal(400);
  });

  it('a write from another site is refused even with an admin cookie; the same origin is not', async () => {
    const { snapshotId } = await readyItem();
    const cross = await as(admin).post(`/api/admin/community/${snapshotId}/hide`, { reason: 'x' }).set('Origin', 'https://evil.example');
    expect(cross.status).to.equal(403);
    expect((await t.knex('community_snapshots').where({ id: snapshotId }).first()).is_hidden).to.equal(false);
    const same = await t.http().post(`/api/admin/community/${snapshotId}/hide`).set('Cookie', admin.cookie).set('Host', 'mod.test').set('Origin', 'http://mod.test').send({ reason: 'x' });
    expect(same.status, same.text).to.equal(200);
    // The other admin writes (rerun, regenerate, retry) are held to the same rule.
    const outboxBefore = await t.knex('job_outbox').count<{ n: string }[]>({ n: '*' });
    for (const path of [`/api/admin/snapshots/${snapshotId}/rerun`, `/api/admin/sessions/${(await t.knex('community_snapshots').where({ id: snapshotId }).first()).session_id}/thumbnail`]) {
      const refused = await t.http().post(path).set('Cookie', admin.cookie).set('Origin', 'https://evil.example');
      expect(refused.status, `${path}: ${refused.text}`).to.equal(403);
    }
    expect(await t.knex('job_outbox').count<{ n: string }[]>({ n: '*' }), 'no job was queued').to.deep.equal(outboxBefore);
  });
});
