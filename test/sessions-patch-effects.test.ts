import { expect } from 'chai';
import { createTestApp, registerUser } from './helpers/app.js';
import { waitFor } from './helpers/wait.js';
import { Client, expectEnvelope, expectUnchanged, jobsAfter, maxOutboxId, sessionRow, sessionState, type Body } from './helpers/session-state.js';

describe('PATCH /api/sessions/:id: snapshots, thumbnails, atomicity, concurrency', () => {
  const t = createTestApp();
  let c: Client;

  before(async () => {
    c = new Client(t, await registerUser(t));
  });

  const snapshotsOf = (sessionId: number) => t.knex('community_snapshots').where({ session_id: sessionId }).orderBy('id');

  describe('sharing to the community', () => {
    it('share writes one pending snapshot of the session and one create job', async () => {
      const s = await c.create({ aiPrompt: 'prompt', isManualMode: true, thumbnail: 'https://cdn.example.test/t.png', transition: 'slide' });
      const v0 = (await sessionRow(t.knex, s.id)).version;
      const mark = await maxOutboxId(t.knex);
      const body = await c.patchOk(s.id, { shareToCommunity: true, title: 'Shared title' });

      const snapshots = await snapshotsOf(s.id);
      expect(snapshots).to.have.length(1);
      const snap = snapshots[0]!;
      // A copy of the session as it stands after this PATCH.
      expect(snap).to.include({
        status: 'pending',
        user_id: c.user.user.id,
        title: 'Shared title',
        category_id: s.categoryId,
        interval_min: 3,
        interval_max: 10,
        transition: 'slide',
        caption_theme: 'joi',
        ai_prompt: 'prompt',
        is_manual_mode: true,
        is_imported: false,
        source_thumbnail: 'https://cdn.example.test/t.png',
      });
      expect(snap.subreddits).to.deep.equal(['pics', 'earthporn']);
      expect(body).to.include({ shareToCommunity: true });
      expect(body.communitySnapshot).to.deep.equal({ id: snap.id, status: 'pending' });
      expect(await jobsAfter(t.knex, mark)).to.deep.equal([['snapshots', 'create', { snapshotId: snap.id, sessionId: s.id }]]);
      expect(await sessionRow(t.knex, s.id)).to.include({ share_to_community: true, version: v0 + 1 });
      expect((await c.get(s.id)).body.session.communitySnapshot).to.deep.equal({ id: snap.id, status: 'pending' });
    });

    it('repeating shareToCommunity: true changes nothing (no rows, same version and ETag)', async () => {
      const s = await c.create();
      const first = await c.patch(s.id, { shareToCommunity: true });
      expect(first.status).to.equal(200);
      const again = await expectUnchanged(t.knex, s.id, () => c.patch(s.id, { shareToCommunity: true }));
      expect(again.status).to.equal(200);
      expect(again.headers.etag).to.equal(first.headers.etag);
      expect(again.body.communitySnapshot).to.deep.equal(first.body.communitySnapshot);
    });

    it('unshare deletes the snapshot row and writes one purge job; repeating false changes nothing', async () => {
      const s = await c.create({ shareToCommunity: true });
      const [snap] = await snapshotsOf(s.id);
      expect(snap).to.not.equal(undefined);
      const v0 = (await sessionRow(t.knex, s.id)).version;
      const mark = await maxOutboxId(t.knex);

      const body = await c.patchOk(s.id, { shareToCommunity: false });
      expect(body).to.include({ shareToCommunity: false, communitySnapshot: null });
      expect(await snapshotsOf(s.id)).to.deep.equal([]);
      expect(await jobsAfter(t.knex, mark)).to.deep.equal([['snapshots', 'purge', { snapshotId: snap!.id }]]);
      expect(await sessionRow(t.knex, s.id)).to.include({ share_to_community: false, version: v0 + 1 });

      await expectUnchanged(t.knex, s.id, () => c.patchOk(s.id, { shareToCommunity: false }));
    });

    it('sharing again makes a new snapshot', async () => {
      const s = await c.create({ shareToCommunity: true });
      const [old] = await snapshotsOf(s.id);
      await c.patchOk(s.id, { shareToCommunity: false });
      const mark = await maxOutboxId(t.knex);
      await c.patchOk(s.id, { shareToCommunity: true });
      const snapshots = await snapshotsOf(s.id);
      expect(snapshots).to.have.length(1);
      expect(snapshots[0]!.id).to.not.equal(old!.id);
      expect(await jobsAfter(t.knex, mark)).to.deep.equal([['snapshots', 'create', { snapshotId: snapshots[0]!.id, sessionId: s.id }]]);
    });

    it('DELETE of a shared session: 204; session, media and snapshot rows gone; snapshot purge queued', async () => {
      const s = await c.create({ shareToCommunity: true });
      const [snap] = await snapshotsOf(s.id);
      const [media] = await t.knex('session_media').insert({ session_id: s.id, media_url: 'https://i.example.test/a.jpg', type: 'image', order: 0 }).returning('id');
      await t.knex('community_snapshot_media').insert({ snapshot_id: snap!.id, source_media_id: (media as { id: number }).id, source_url: 'https://i.example.test/a.jpg', type: 'image', order: 0 });
      const mark = await maxOutboxId(t.knex);

      const res = await t.http().delete(`/api/sessions/${s.id}`).set('Cookie', c.user.cookie);
      expect(res.status).to.equal(204);
      expect(res.text).to.equal('');
      const state = await sessionState(t.knex, s.id);
      expect(state.session).to.equal(undefined);
      expect(state.media).to.deep.equal([]);
      expect(state.snapshots).to.deep.equal([]);
      expect(await t.knex('community_snapshot_media').where({ snapshot_id: snap!.id })).to.deep.equal([]);
      expect(await jobsAfter(t.knex, mark)).to.deep.equal([
        ['thumbnails', 'purge', { sessionId: s.id }],
        ['snapshots', 'purge', { snapshotId: snap!.id }],
      ]);
      expectEnvelope(await c.get(s.id), 404, 'NOT_FOUND');
      expectEnvelope(await t.http().delete(`/api/sessions/${s.id}`).set('Cookie', c.user.cookie), 404, 'NOT_FOUND');
    });

    it('DELETE of an unshared session queues no snapshot purge', async () => {
      const s = await c.create();
      const mark = await maxOutboxId(t.knex);
      await t.http().delete(`/api/sessions/${s.id}`).set('Cookie', c.user.cookie).expect(204);
      expect(await jobsAfter(t.knex, mark)).to.deep.equal([['thumbnails', 'purge', { sessionId: s.id }]]);
    });
  });

  describe('thumbnails', () => {
    const generation = async (id: number): Promise<number> => (await sessionRow(t.knex, id)).thumbnail_generation;

    it('"" clears a custom thumbnail and queues one generation with a higher generation', async () => {
      const s = await c.create({ thumbnail: 'https://cdn.example.test/mine.png' });
      const g0 = await generation(s.id);
      const mark = await maxOutboxId(t.knex);
      const body = await c.patchOk(s.id, { thumbnail: '' });
      expect(body.thumbnail).to.equal(null);
      expect(await sessionRow(t.knex, s.id)).to.include({ thumbnail: null, thumbnail_source: 'auto', thumbnail_generation: g0 + 1 });
      expect(await jobsAfter(t.knex, mark)).to.deep.equal([['thumbnails', 'generate', { sessionId: s.id, generation: g0 + 1 }]]);

      // Asking again asks for a newer one.
      const mark2 = await maxOutboxId(t.knex);
      await c.patchOk(s.id, { thumbnail: '' });
      expect(await jobsAfter(t.knex, mark2)).to.deep.equal([['thumbnails', 'generate', { sessionId: s.id, generation: g0 + 2 }]]);
      expect(await generation(s.id)).to.equal(g0 + 2);
    });

    it('new subreddits without a thumbnail queue a media sync and a newer thumbnail generation', async () => {
      const s = await c.create();
      const g0 = await generation(s.id);
      const mark = await maxOutboxId(t.knex);
      await c.patchOk(s.id, { subreddits: 'art, r/Aww' });
      expect(await jobsAfter(t.knex, mark)).to.deep.equal([
        ['media', 'sync', { sessionId: s.id }],
        ['thumbnails', 'generate', { sessionId: s.id, generation: g0 + 1 }],
      ]);
      expect(await sessionRow(t.knex, s.id)).to.include({ thumbnail_generation: g0 + 1, thumbnail_source: 'auto' });
    });

    it('the same subreddits written differently are no change: no jobs', async () => {
      const s = await c.create({ subreddits: 'pics, aww' });
      await expectUnchanged(t.knex, s.id, () => c.patchOk(s.id, { subreddits: ['R/Pics', ' aww ', 'pics'] }));
    });

    it('a custom URL sets the thumbnail and queues nothing, even with new subreddits', async () => {
      const s = await c.create();
      let mark = await maxOutboxId(t.knex);
      expect(await c.patchOk(s.id, { thumbnail: 'https://cdn.example.test/custom.png' })).to.include({ thumbnail: 'https://cdn.example.test/custom.png' });
      expect(await sessionRow(t.knex, s.id)).to.include({ thumbnail: 'https://cdn.example.test/custom.png', thumbnail_source: 'custom' });
      expect(await jobsAfter(t.knex, mark)).to.deep.equal([]);

      mark = await maxOutboxId(t.knex);
      const g = await generation(s.id);
      await c.patchOk(s.id, { subreddits: 'space', thumbnail: 'https://cdn.example.test/other.png' });
      expect(await jobsAfter(t.knex, mark)).to.deep.equal([['media', 'sync', { sessionId: s.id }]]);
      expect(await sessionRow(t.knex, s.id)).to.include({ thumbnail: 'https://cdn.example.test/other.png', thumbnail_source: 'custom' });
      expect(await generation(s.id)).to.be.at.least(g);
    });

    it('a custom thumbnail survives new subreddits: a media sync, no thumbnail job', async () => {
      const s = await c.create({ thumbnail: 'https://cdn.example.test/mine.png' });
      const g0 = await generation(s.id);
      const mark = await maxOutboxId(t.knex);
      expect(await c.patchOk(s.id, { subreddits: 'space' })).to.include({ thumbnail: 'https://cdn.example.test/mine.png' });
      expect(await jobsAfter(t.knex, mark)).to.deep.equal([['media', 'sync', { sessionId: s.id }]]);
      expect(await sessionRow(t.knex, s.id)).to.include({ thumbnail: 'https://cdn.example.test/mine.png', thumbnail_source: 'custom', thumbnail_generation: g0 });
    });

    it('subreddits emptied: a media sync but nothing to make a thumbnail from', async () => {
      const s = await c.create();
      const g0 = await generation(s.id);
      const mark = await maxOutboxId(t.knex);
      expect((await c.patchOk(s.id, { subreddits: ' , ' })).subreddits).to.deep.equal([]);
      expect(await jobsAfter(t.knex, mark)).to.deep.equal([['media', 'sync', { sessionId: s.id }]]);
      expect(await generation(s.id)).to.equal(g0);
    });
  });

  describe('atomicity under an injected fault', () => {
    // A BEFORE INSERT trigger on job_outbox fails the transaction for this suite's sessions. Outbox
    // rows are written last, so the session UPDATE (and snapshot insert or delete) has already run
    // when it fires. The trigger records what it saw in a sequence (sequences ignore ROLLBACK),
    // which proves those writes happened before the failure: 1000 + 10 × version + snapshot rows.
    let plain: Body & { id: number };
    let shared: Body & { id: number };
    let doomed: Body & { id: number };
    let sharedSnapshotId: number;

    before(async () => {
      plain = await c.create();
      shared = await c.create({ shareToCommunity: true });
      doomed = await c.create({ shareToCommunity: true });
      sharedSnapshotId = (await snapshotsOf(shared.id))[0]!.id;
      await t.knex('session_media').insert({ session_id: doomed.id, media_url: 'https://i.example.test/d.jpg', type: 'image', order: 0 });
      await t.knex.raw(`
        CREATE SEQUENCE test_fault_probe;
        CREATE FUNCTION test_fail_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE target int := COALESCE((NEW.payload->>'sessionId')::int, CASE WHEN (NEW.payload->>'snapshotId')::int = ${sharedSnapshotId} THEN ${shared.id} END);
        BEGIN
          IF target IN (${plain.id}, ${shared.id}, ${doomed.id}) THEN
            PERFORM setval('test_fault_probe', 1000 + 10 * COALESCE((SELECT version FROM sessions WHERE id = target), 0)
              + (SELECT count(*) FROM community_snapshots WHERE session_id = target));
            RAISE EXCEPTION 'injected outbox failure for session %', target;
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER test_fail_outbox BEFORE INSERT ON job_outbox FOR EACH ROW EXECUTE FUNCTION test_fail_outbox();`);
    });

    after(async () => {
      await t.knex.raw('DROP TRIGGER IF EXISTS test_fail_outbox ON job_outbox; DROP FUNCTION IF EXISTS test_fail_outbox(); DROP SEQUENCE IF EXISTS test_fault_probe;');
    });

    beforeEach(async () => {
      await t.knex.raw(`SELECT setval('test_fault_probe', 1)`);
    });

    const probe = async (): Promise<number> => Number((await t.knex.raw<{ rows: { last_value: string }[] }>('SELECT last_value FROM test_fault_probe')).rows[0]!.last_value);

    /** The request fails as a server fault (not blamed on the input) and leaks nothing of it. */
    function expectInjectedFault(res: { status: number; text: string } & Parameters<typeof expectEnvelope>[0]): void {
      expectEnvelope(res, 500, 'INTERNAL_ERROR');
      expect(res.text).to.not.match(/injected|outbox|session \d/);
    }

    it('PATCH of title and subreddits: the UPDATE ran, then the outbox failed; nothing is kept', async () => {
      const v0 = (await sessionRow(t.knex, plain.id)).version;
      await expectUnchanged(t.knex, plain.id, async () => {
        const res = await t.http().patch(`/api/sessions/${plain.id}`).set('Cookie', c.user.cookie).send({ title: 'Never stored', subreddits: 'art', isFavorite: true });
        expectInjectedFault(res);
      });
      expect(await probe(), 'the trigger saw the bumped version').to.equal(1000 + 10 * (v0 + 1));
    });

    it('share: the UPDATE and the snapshot insert ran, then the outbox failed; no snapshot is left', async () => {
      const v0 = (await sessionRow(t.knex, plain.id)).version;
      await expectUnchanged(t.knex, plain.id, async () => {
        expectInjectedFault(await t.http().patch(`/api/sessions/${plain.id}`).set('Cookie', c.user.cookie).send({ shareToCommunity: true }));
      });
      expect(await probe()).to.equal(1000 + 10 * (v0 + 1) + 1);
      expect(await snapshotsOf(plain.id)).to.deep.equal([]);
    });

    it('unshare: the UPDATE and the snapshot delete ran, then the outbox failed; the snapshot stays', async () => {
      const v0 = (await sessionRow(t.knex, shared.id)).version;
      await expectUnchanged(t.knex, shared.id, async () => {
        expectInjectedFault(await t.http().patch(`/api/sessions/${shared.id}`).set('Cookie', c.user.cookie).send({ shareToCommunity: false }));
      });
      expect(await probe()).to.equal(1000 + 10 * (v0 + 1) + 0);
      expect((await snapshotsOf(shared.id)).map((s) => s.id)).to.deep.equal([sharedSnapshotId]);
    });

    it('DELETE: the row delete ran, then the outbox failed; session, media and snapshot stay', async () => {
      await expectUnchanged(t.knex, doomed.id, async () => {
        expectInjectedFault(await t.http().delete(`/api/sessions/${doomed.id}`).set('Cookie', c.user.cookie));
      });
      expect(await probe(), 'the session and its snapshot were already deleted').to.equal(1000);
      expect((await c.get(doomed.id)).status).to.equal(200);
    });

    it('the same PATCH without the fault goes through', async () => {
      const other = await c.create();
      expect(await c.patchOk(other.id, { title: 'Stored', subreddits: 'art' })).to.include({ title: 'Stored' });
      expect(await probe(), 'the trigger did not fire').to.equal(1);
    });
  });

  describe('concurrency', () => {
    it('concurrent PATCHes of different fields all land, one version each', async () => {
      const s = await c.create();
      const other = (await t.http().get('/api/categories').expect(200)).body.find((x: { isDefault: boolean }) => !x.isDefault) as { id: number };
      const v0 = (await sessionRow(t.knex, s.id)).version;
      const edits: Record<string, unknown>[] = [
        { title: 'Concurrent' },
        { intervalMin: 2 },
        { intervalMax: 30 },
        { transition: 'flip' },
        { aiPrompt: 'prompt' },
        { captionTheme: 'beta' },
        { isPublic: true },
        { isFavorite: true },
        { isManualMode: true },
        { categoryId: other.id },
      ];
      const results = await Promise.all(edits.map((e) => c.patch(s.id, e)));
      expect(results.map((r) => r.status)).to.deep.equal(edits.map(() => 200));
      const row = await sessionRow(t.knex, s.id);
      expect(row).to.include({
        title: 'Concurrent',
        interval_min: 2,
        interval_max: 30,
        transition: 'flip',
        ai_prompt: 'prompt',
        caption_theme: 'beta',
        is_public: true,
        is_favorite: true,
        is_manual_mode: true,
        category_id: other.id,
        category_source: 'manual',
        version: v0 + edits.length,
      });
      // Each request saw its own version: they ran one after another, none lost.
      const etags = results.map((r) => r.headers.etag as string).sort();
      expect(etags).to.deep.equal(edits.map((_, i) => `"s${s.id}-v${v0 + i + 1}"`).sort());
    });

    it('a stale If-Match gets 412 and changes nothing; the current ETag (or *) succeeds', async () => {
      const s = await c.create();
      const first = await c.patch(s.id, { title: 'One' });
      expect(first.status).to.equal(200);
      const stale = `"s${s.id}-v1"`;
      expect(first.headers.etag).to.not.equal(stale);
      const refused = await expectUnchanged(t.knex, s.id, () => c.patch(s.id, { title: 'Lost update' }, { 'If-Match': stale }));
      expect(expectEnvelope(refused, 412, 'PRECONDITION_FAILED').message).to.include(first.headers.etag as string);

      const second = await c.patch(s.id, { title: 'Two' }, { 'If-Match': first.headers.etag as string });
      expect(second.status).to.equal(200);
      expect(second.body.title).to.equal('Two');
      expect(second.headers.etag).to.not.equal(first.headers.etag);
      expect((await c.patch(s.id, { title: 'Three' }, { 'If-Match': `${stale}, ${second.headers.etag as string}` })).status).to.equal(200);
      expect((await c.patch(s.id, { title: 'Four' }, { 'If-Match': '*' })).status).to.equal(200);
      expect((await sessionRow(t.knex, s.id)).title).to.equal('Four');
    });

    it('a PATCH whose row is written while it waits answers with the row as committed, that write included', async () => {
      const s = await c.create();
      const v0 = (await sessionRow(t.knex, s.id)).version;
      const other = await t.knex.transaction();
      try {
        await other('sessions').where({ id: s.id }).forUpdate().first('id');
        const pending = c.patch(s.id, { intervalMin: 2 });
        await waitFor('the PATCH to wait for the row', async () => {
          const [row] = await t.knex('pg_stat_activity').where({ wait_event_type: 'Lock', datname: t.knex.raw('current_database()') }).count({ waiting: '*' });
          return Number(row?.waiting) > 0;
        }, { intervalMs: 10 });
        // As a worker writes a generated thumbnail: without bumping the version.
        await other('sessions').where({ id: s.id }).update({ thumbnail: 'https://cdn.example.test/written-meanwhile.webp' });
        await other.commit();
        const res = await pending;
        expect(res.status).to.equal(200);
        expect(res.body).to.include({ intervalMin: 2, thumbnail: 'https://cdn.example.test/written-meanwhile.webp' });
        expect(await sessionRow(t.knex, s.id)).to.include({ interval_min: 2, thumbnail: 'https://cdn.example.test/written-meanwhile.webp', version: v0 + 1 });
      } finally {
        if (!other.isCompleted()) await other.rollback();
      }
    });

    it('a PATCH that writes jobs, whose row is written while it waits, plans its jobs from the row as committed', async () => {
      const s = await c.create();
      const mark = await maxOutboxId(t.knex);
      const other = await t.knex.transaction();
      try {
        await other('sessions').where({ id: s.id }).forUpdate().first('id');
        const pending = c.patch(s.id, { subreddits: 'meanwhile' });
        await waitFor('the PATCH to wait for the row', async () => {
          const [row] = await t.knex('pg_stat_activity').where({ wait_event_type: 'Lock', datname: t.knex.raw('current_database()') }).count({ waiting: '*' });
          return Number(row?.waiting) > 0;
        }, { intervalMs: 10 });
        // The owner sets a custom thumbnail meanwhile (another tab): new subreddits no longer ask for one.
        await other('sessions').where({ id: s.id }).update({ thumbnail: 'https://cdn.example.test/custom.png', thumbnail_source: 'custom', version: other.raw('version + 1') });
        await other.commit();
        const res = await pending;
        expect(res.status).to.equal(200);
        expect([res.body.subreddits, res.body.thumbnail]).to.deep.equal([['meanwhile'], 'https://cdn.example.test/custom.png']);
        expect(await jobsAfter(t.knex, mark)).to.deep.equal([['media', 'sync', { sessionId: s.id }]]);
        expect(await sessionRow(t.knex, s.id)).to.include({ thumbnail_source: 'custom', thumbnail: 'https://cdn.example.test/custom.png' });
      } finally {
        if (!other.isCompleted()) await other.rollback();
      }
    });

    it('two concurrent PATCHes with the same If-Match: one wins, the other gets 412', async () => {
      const s = await c.create();
      const etag = (await c.get(s.id)).headers.etag as string;
      const results = await Promise.all(['A', 'B'].map((title) => c.patch(s.id, { title }, { 'If-Match': etag })));
      expect(results.map((r) => r.status).sort()).to.deep.equal([200, 412]);
      const winner = results.find((r) => r.status === 200)!;
      expect(await sessionRow(t.knex, s.id)).to.include({ title: winner.body.title, version: 2 });
    });

    it('concurrent interval changes valid alone but not together: one 200, one 400, the row stays valid', async () => {
      const s = await c.create({ intervalMin: 3, intervalMax: 10 });
      const results = await Promise.all([c.patch(s.id, { intervalMin: 8 }), c.patch(s.id, { intervalMax: 5 })]);
      expect(results.map((r) => r.status).sort()).to.deep.equal([200, 400]);
      const row = await sessionRow(t.knex, s.id);
      // Whichever committed first holds; the other was checked against it.
      expect([row.interval_min, row.interval_max]).to.deep.equal(results[0]!.status === 200 ? [8, 10] : [3, 5]);
      expect(row.version).to.equal(2);
    });

    it('concurrent shares make one snapshot and one job', async () => {
      const s = await c.create();
      const mark = await maxOutboxId(t.knex);
      const results = await Promise.all(Array.from({ length: 5 }, () => c.patch(s.id, { shareToCommunity: true })));
      expect(results.map((r) => r.status)).to.deep.equal([200, 200, 200, 200, 200]);
      const snapshots = await snapshotsOf(s.id);
      expect(snapshots).to.have.length(1);
      expect(await jobsAfter(t.knex, mark)).to.deep.equal([['snapshots', 'create', { snapshotId: snapshots[0]!.id, sessionId: s.id }]]);
      expect((await sessionRow(t.knex, s.id)).version).to.equal(2);
    });

    it('a PATCH racing a DELETE either lands first or gets 404; nothing survives the DELETE', async () => {
      const s = await c.create({ shareToCommunity: true });
      const [patched, deleted] = await Promise.all([
        c.patch(s.id, { title: 'Racing', shareToCommunity: false }),
        t.http().delete(`/api/sessions/${s.id}`).set('Cookie', c.user.cookie),
      ]);
      expect(deleted.status).to.equal(204);
      expect(patched.status).to.be.oneOf([200, 404]);
      const state = await sessionState(t.knex, s.id);
      expect([state.session, state.snapshots, state.media]).to.deep.equal([undefined, [], []]);
    });
  });
});
