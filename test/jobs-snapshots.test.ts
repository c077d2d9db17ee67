import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { registerUser, type TestUser } from './helpers/app.js';
import { createSession, outboxFor, patch, serveImages } from './helpers/flows.js';
import { expectDurableSnapshotBlobs } from './helpers/durable-blobs.js';
import { type JobStack } from './helpers/job-stack.js';
import { forEachRedis } from './helpers/redis-kinds.js';
import { waitFor } from './helpers/wait.js';
import { collectDurableBlobs } from '../workers/processors/durable-blobs.js';
import { createSnapshot } from '../workers/processors/snapshots.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

forEachRedis((redis) => describe(`jobs: community snapshots (worker process, Azurite)${redis.suffix}`, function () {
  this.timeout(60_000);
  let stack: JobStack;

  before(async () => {
    stack = await redis.jobStack();
    await stack.startWorker();
  });
  after(async () => stack?.close());

  const container = (): string => stack.config.blobContainers.snapshots;
  const blobsUnder = async (prefix: string): Promise<string[]> => (await stack.blobs.list(container(), prefix)).map((b) => b.name).sort();
  const snapshotOf = (sessionId: number) => stack.knex('community_snapshots').where({ session_id: sessionId }).first();

  async function sharedSession(user: TestUser, sub: string, count: number): Promise<{ id: number }> {
    await serveImages(stack.fixture, sub, count);
    const created = await createSession(stack.t, user, { title: `Shared ${sub}`, subreddits: sub });
    await waitFor('media synced', async () => (await stack.knex('session_media').where({ session_id: created.id })).length === count);
    return created;
  }

  it('share → ready with every blob equal to its source; in the feed; unaffected by later edits; unshare → gone with its blobs', async () => {
    const user = await registerUser(stack.t, { firstName: 'Sharer' });
    const posts = await serveImages(stack.fixture, 'sharing', 3);
    const created = await createSession(stack.t, user, { title: 'To share', subreddits: 'sharing' });
    await waitFor('media synced', async () => (await stack.knex('session_media').where({ session_id: created.id })).length === 3);

    const shared = await patch(stack.t, user, created.id, { shareToCommunity: true });
    expect(shared.communitySnapshot).to.deep.include({ status: 'pending' });
    const snapshotId = (shared.communitySnapshot as { id: number }).id;
    await waitFor('the snapshot to be ready', async () => (await snapshotOf(created.id))?.status === 'ready');

    const feed = await stack.t.http().get('/api/community').set('Cookie', user.cookie).expect(200);
    const item = feed.body.items.find((i: { id: number }) => i.id === snapshotId);
    expect(item).to.deep.include({ kind: 'session', sessionId: created.id, title: 'To share', user: { id: user.user.id, firstName: 'Sharer' } });
    const detail = await stack.t.http().get(`/api/community/sessions/${snapshotId}`).set('Cookie', user.cookie).expect(200);
    expect(detail.body.media).to.have.length(3);
    for (const [i, m] of (detail.body.media as { mediaUrl: string; checksum: string; redditPostId: string }[]).entries()) {
      expect(m.redditPostId).to.equal(posts[i]!.id);
      const source = Buffer.from(await (await fetch(stack.fixture.url(posts[i]!.path!))).arrayBuffer());
      const copy = Buffer.from(await (await fetch(m.mediaUrl)).arrayBuffer());
      expect(m.mediaUrl).to.equal(stack.blobs.url(container(), `media/sha256/${m.checksum.slice(0, 2)}/${m.checksum}.jpg`));
      expect(sha256(copy)).to.equal(sha256(source));
      expect(m.checksum).to.equal(sha256(source));
    }

    // Editing the original changes nothing in the snapshot.
    await patch(stack.t, user, created.id, { title: 'Renamed original', subreddits: 'sharing, other' });
    const again = await stack.t.http().get(`/api/community/sessions/${snapshotId}`).set('Cookie', user.cookie).expect(200);
    expect(again.body.title).to.equal('To share');
    expect(again.body.subreddits).to.deep.equal(['sharing']);
    expect(again.body.media.map((m: { mediaUrl: string }) => m.mediaUrl)).to.deep.equal(detail.body.media.map((m: { mediaUrl: string }) => m.mediaUrl));

    // Its blobs, content-addressed and recorded, before the unshare.
    const blobNames = await expectDurableSnapshotBlobs(stack, await snapshotOf(created.id));
    expect(blobNames).to.have.length.at.least(3);
    const unshared = await patch(stack.t, user, created.id, { shareToCommunity: false });
    expect(unshared.communitySnapshot).to.equal(null);
    await stack.t.http().get(`/api/community/sessions/${snapshotId}`).set('Cookie', user.cookie).expect(404);
    const feedAfter = await stack.t.http().get('/api/community').set('Cookie', user.cookie).expect(200);
    expect(feedAfter.body.items.map((i: { id: number }) => i.id)).to.not.include(snapshotId);
    // Its references went with its rows; its blobs go with the collector's next pass (here with no grace period).
    expect(await stack.knex('community_snapshot_media').where({ snapshot_id: snapshotId })).to.deep.equal([]);
    const collector = { ...stack.deps, config: { ...stack.config, maintenance: { ...stack.config.maintenance, mediaGcGraceMinutes: 0 } } };
    expect(await collectDurableBlobs(collector, 1_000), 'blobs the pass collected').to.be.at.least(blobNames.length);
    for (const name of blobNames) expect(await stack.blobs.exists(container(), name), `${name} deleted`).to.equal(false);
    expect(await stack.knex('durable_blobs').whereIn('blob_name', blobNames).pluck('blob_name'), 'their rows').to.deep.equal([]);
  });

  it('share, unshare, share in quick succession → one live snapshot and no blob outside it', async () => {
    const user = await registerUser(stack.t);
    const created = await sharedSession(user, 'flipflop', 3);
    const first = await patch(stack.t, user, created.id, { shareToCommunity: true });
    await patch(stack.t, user, created.id, { shareToCommunity: false });
    const last = await patch(stack.t, user, created.id, { shareToCommunity: true });
    const firstId = (first.communitySnapshot as { id: number }).id;
    const liveId = (last.communitySnapshot as { id: number }).id;
    expect(liveId).to.not.equal(firstId);
    expect(await stack.knex('community_snapshots').where({ session_id: created.id })).to.have.length(1);

    await waitFor('the live snapshot to be ready', async () => (await snapshotOf(created.id))?.status === 'ready');
    // Settled: every job of this session has finished.
    await waitFor('all snapshot jobs to settle', async () => {
      const rows = (await outboxFor(stack.knex, created.id)).filter((r) => r.queue === 'snapshots');
      const jobs = await Promise.all(rows.map((r) => stack.job('snapshots', r.id)));
      return jobs.every((j) => j && (j.state === 'completed' || j.state === 'failed'));
    });
    const purgeRows = await stack.knex('job_outbox').where({ queue: 'snapshots', job_name: 'purge' }).whereRaw(`(payload->>'snapshotId')::int = ?`, [firstId]);
    expect(purgeRows).to.have.length(1);
    await waitFor('the purge to finish', async () => (await stack.job('snapshots', purgeRows[0].id))?.state === 'completed');
    expect(await stack.knex('community_snapshot_media').where({ snapshot_id: firstId })).to.deep.equal([]);
    const live = await stack.knex('community_snapshot_media').where({ snapshot_id: liveId });
    expect(new Set(live.map((r) => r.blob_sha256)).size).to.equal(3);
    for (const r of live) expect(await stack.blobs.exists(container(), r.blob_name), r.blob_name).to.equal(true);
  });

  it('the same snapshot job run twice (even at once) leaves the same blobs and rows, no duplicates', async () => {
    const user = await registerUser(stack.t);
    const created = await sharedSession(user, 'twice', 4);
    // Write the snapshot row through the API, but run its job here, twice, concurrently.
    const held = await stack.knex('sessions').where({ id: created.id }).first();
    expect(held).to.exist;
    const [snapshot] = await stack.knex('community_snapshots')
      .insert({
        session_id: created.id,
        user_id: user.user.id,
        title: 'twice',
        subreddits: ['twice'],
        category_id: held.category_id,
        interval_min: 3,
        interval_max: 10,
        transition: 'fade',
        caption_theme: 'joi',
        is_manual_mode: false,
        is_imported: false,
      })
      .returning('id');
    const job = { data: { snapshotId: snapshot.id as number, sessionId: created.id }, attemptsMade: 0, opts: { attempts: 3 } };
    const results = await Promise.all([createSnapshot(stack.deps, job), createSnapshot(stack.deps, job)]);
    expect(results.map((r) => r.status)).to.include('ready');
    const rows = await stack.knex('community_snapshot_media').where({ snapshot_id: snapshot.id }).orderBy('order');
    const names = (await blobsUnder('media/sha256/')).filter((n) => rows.some((r) => r.blob_name === n));
    expect(rows).to.have.length(4);
    expect(rows.every((r) => r.copied_at !== null)).to.equal(true);
    expect(names).to.have.length(4);
    expect(await stack.knex('durable_blobs').whereIn('sha256', rows.map((r) => r.blob_sha256))).to.have.length(4);

    // A third run after it is ready changes nothing.
    const third = await createSnapshot(stack.deps, job);
    expect(third.status).to.equal('already-ready');
    expect((await blobsUnder('media/sha256/')).filter((n) => rows.some((r) => r.blob_name === n))).to.deep.equal(names);
    expect(await stack.knex('community_snapshot_media').where({ snapshot_id: snapshot.id })).to.have.length(4);
  });

  it('a media item that cannot be copied fails the snapshot with the item named', async () => {
    const user = await registerUser(stack.t);
    await serveImages(stack.fixture, 'broken', 1);
    stack.fixture.setListing(['broken'], [
      { id: 'okone', kind: 'image', path: (await serveImages(stack.fixture, 'brokenok', 1))[0]!.path! },
      { id: 'gone', kind: 'image', path: '/media/gone-for-good.jpg' },
    ]);
    stack.fixture.route('/media/gone-for-good.jpg', (_req, res) => void res.writeHead(404).end());
    const created = await createSession(stack.t, user, { title: 'Broken', subreddits: 'broken' });
    await waitFor('media synced', async () => (await stack.knex('session_media').where({ session_id: created.id })).length === 2);
    await patch(stack.t, user, created.id, { shareToCommunity: true });
    const snap = await waitFor('the snapshot to fail', async () => {
      const s = await snapshotOf(created.id);
      return s?.status === 'failed' ? s : undefined;
    });
    expect(snap.last_error).to.match(/item 1/).and.to.match(/gone-for-good\.jpg/).and.to.match(/404/);
    expect(snap.attempts).to.equal(1);
  });
}));
