import { expect } from 'chai';
import { registerUser } from './helpers/app.js';
import { createSession, patch } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { runScriptFile } from './helpers/script.js';
import { waitFor } from './helpers/wait.js';
import type { WorkerProcess } from './helpers/worker-process.js';
import { outboxJobId } from '../workers/index.js';

const ITEMS = 40;

interface SlowSnapshot {
  snapshotId: number;
  outboxId: number;
  copied(): Promise<number>;
  /** The snapshot row; throws with the job's failure reason if its job was given up on. */
  readyOrThrow(): Promise<Record<string, unknown> | undefined>;
}

/** A shared session of ITEMS media, each served after 300 ms, so its snapshot takes a few seconds to copy. */
async function slowSnapshot(stack: JobStack): Promise<SlowSnapshot> {
  const user = await registerUser(stack.t);
  const image = await stack.fixture.image('/media/crash-src.jpg', { width: 400, height: 300, format: 'jpeg' });
  await stack.fixture.image('/media/crash-thumb.jpg', { width: 320, height: 180, format: 'jpeg' });
  const posts = Array.from({ length: ITEMS }, (_, i) => ({ id: `crash${i}`, kind: 'image' as const, path: `/media/crash${i}.jpg` }));
  for (const p of posts) {
    stack.fixture.route(p.path, (_req, res) => void setTimeout(() => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(image), 300));
  }
  stack.fixture.setListing(['crash'], posts);
  const created = await createSession(stack.t, user, { title: 'Crash', subreddits: 'crash', thumbnail: stack.fixture.url('/media/crash-thumb.jpg') });
  await waitFor('media synced', async () => (await stack.knex('session_media').where({ session_id: created.id })).length === ITEMS);
  const shared = await patch(stack.t, user, created.id, { shareToCommunity: true });
  const snapshotId = (shared.communitySnapshot as { id: number }).id;
  const row = await stack.knex('job_outbox').where({ queue: 'snapshots', job_name: 'create' }).whereRaw(`(payload->>'snapshotId')::int = ?`, [snapshotId]).first();
  const load = () => stack.knex('community_snapshots').where({ id: snapshotId }).first();
  return {
    snapshotId,
    outboxId: row.id as number,
    copied: async () => (await load()).copied_count as number,
    async readyOrThrow() {
      const s = await load();
      if (s?.status === 'ready') return s;
      const job = await stack.job('snapshots', row.id);
      if (job?.state === 'failed') throw new Error(`the snapshot job failed: ${job.failedReason} (snapshot ${s?.status}, ${s?.copied_count} copied)`);
      return undefined;
    },
  };
}

/** The ETag of the blob of each item the snapshot has recorded as copied, read as anyone reads it: a HEAD on its URL. */
async function copiedBlobTags(stack: JobStack, snapshotId: number): Promise<Map<string, string>> {
  const rows = await stack.knex('community_snapshot_media').where({ snapshot_id: snapshotId }).whereNotNull('copied_at');
  const tags = new Map<string, string>();
  for (const r of rows) {
    const res = await fetch(r.blob_url as string, { method: 'HEAD' });
    expect(res.status, r.blob_url).to.equal(200);
    // By item: items with the same bytes share one blob, and each item's copy must stay as it was.
    tags.set(`item ${r.id} (${r.blob_name})`, res.headers.get('etag')!);
  }
  return tags;
}

/** SIGKILL: no shutdown handler, no cleanup, no returning the job; as a crash or an OOM kill would. */
async function crash(worker: WorkerProcess): Promise<void> {
  worker.signal('SIGKILL');
  expect(await worker.exited).to.equal('SIGKILL');
}

/**
 * The worker process is SIGKILLed while it copies a snapshot and started again. The job is found
 * again once its lock lapses, resumes, and the snapshot ends `ready` with one blob per item and
 * nothing left over; a job whose workers die more often than allowed ends `failed`, with the reason,
 * and an operator's rerun finishes it.
 */
describe('faults: worker SIGKILLed during a snapshot', function () {
  this.timeout(150_000);

  describe('three times', () => {
    let stack: JobStack;
    before(async () => {
      // A short lock, so a dead worker's job is picked up in seconds rather than the production 30 s.
      stack = await startJobStack({ env: { JOB_LOCK_DURATION_MS: '2000', SNAPSHOT_COPY_PARALLELISM: '2' } });
    });
    after(async () => stack?.close());

    it('ends ready with one blob per distinct content, no rows or blobs left over; each run skips the media already copied', async () => {
      let worker = await stack.startWorker();
      const snap = await slowSnapshot(stack);
      const killedAt: number[] = [];
      /** Blobs recorded as copied at some kill, with their ETag then. */
      const copiedBeforeACrash = new Map<string, string>();
      for (let kill = 0; kill < 3; kill++) {
        // Kill only once this worker has made progress of its own, and before the copy is done.
        const from = killedAt.at(-1) ?? 0;
        await waitFor(`progress past ${from} copies before kill ${kill + 1}`, async () => (await snap.readyOrThrow(), (await snap.copied()) >= from + 2), {
          timeoutMs: 30_000,
          intervalMs: 20,
        });
        await crash(worker);
        killedAt.push(await snap.copied());
        for (const [name, tag] of await copiedBlobTags(stack, snap.snapshotId)) if (!copiedBeforeACrash.has(name)) copiedBeforeACrash.set(name, tag);
        worker = await stack.startWorker();
      }
      expect(killedAt.every((n) => n < ITEMS), `copies at each kill: ${killedAt.join(', ')}`).to.equal(true);

      const done = await waitFor('the snapshot to be ready', () => snap.readyOrThrow(), { timeoutMs: 60_000 });
      expect(done.copied_count).to.equal(ITEMS);
      expect(done.media_count).to.equal(ITEMS);
      const rows = await stack.knex('community_snapshot_media').where({ snapshot_id: snap.snapshotId }).orderBy('order');
      expect(rows).to.have.length(ITEMS);
      expect(rows.every((r) => r.copied_at !== null && r.checksum !== null)).to.equal(true);
      // One blob per distinct content (the fixture serves the same bytes for every item).
      expect(new Set(rows.map((r) => r.blob_name)).size).to.equal(new Set(rows.map((r) => r.checksum)).size);
      // The whole container: exactly this snapshot's durable blobs (its items' and its thumbnail's), nothing else.
      const all = (await stack.blobs.list(stack.config.blobContainers.snapshots, '')).map((b) => b.name).sort();
      const { thumbnail_blob_name: thumbnail } = await stack.knex('community_snapshots').where({ id: snap.snapshotId }).first('thumbnail_blob_name');
      expect(thumbnail).to.match(/^media\/sha256\//);
      expect(all).to.deep.equal([...new Set([...rows.map((r) => r.blob_name as string), thumbnail])].sort());
      expect(await stack.knex('community_snapshots')).to.have.length(1);
      // The snapshot is ready inside the job's last step; BullMQ marks the job completed just after.
      const job = await waitFor('the snapshot job completed', async () => {
        const j = await stack.job('snapshots', snap.outboxId);
        return j?.state === 'completed' ? j : undefined;
      });

      // Resumed, not redone: the run that finished copied only what no earlier run had recorded
      // (those recorded before it started), and no blob recorded before a crash was written again.
      const finalRunStarted = (await stack.producer.queues.snapshots.getJob(outboxJobId(snap.outboxId)))!.processedOn!;
      const before = rows.filter((r) => (r.copied_at as Date).getTime() < finalRunStarted).length;
      expect(before, `copies at each kill: ${killedAt.join(', ')}`).to.be.at.least(killedAt.at(-1)!).and.to.be.above(0);
      expect(job.returnvalue).to.deep.include({ status: 'ready', skipped: before, copied: ITEMS - before });
      expect(copiedBeforeACrash.size).to.be.at.least(killedAt.at(-1)!);
      const now = await copiedBlobTags(stack, snap.snapshotId);
      for (const [name, tag] of copiedBeforeACrash) expect(now.get(name), `${name} was uploaded again`).to.equal(tag);
    });
  });

  describe('more often than JOB_MAX_STALLED_COUNT allows', () => {
    let stack: JobStack;
    before(async () => {
      stack = await startJobStack({ env: { JOB_LOCK_DURATION_MS: '2000', JOB_MAX_STALLED_COUNT: '0', SNAPSHOT_COPY_PARALLELISM: '2' } });
    });
    after(async () => stack?.close());

    it('the snapshot ends failed with the reason (not copying forever), and snapshots:rerun finishes it', async () => {
      const worker = await stack.startWorker();
      const snap = await slowSnapshot(stack);
      await waitFor('some copies', async () => (await snap.copied()) >= 2, { timeoutMs: 30_000, intervalMs: 20 });
      await crash(worker);
      await stack.startWorker();
      const failed = await waitFor('the snapshot to be failed', async () => {
        const s = await stack.knex('community_snapshots').where({ id: snap.snapshotId }).first();
        return s.status === 'failed' ? s : undefined;
      });
      expect(failed.last_error).to.match(/stalled more than allowable limit/).and.to.match(/died 1 times/);
      expect(failed.copied_count).to.be.lessThan(ITEMS);

      const run = await runScriptFile('snapshots-rerun.ts', ['--status', 'failed', '--wait', '--timeout', '60'], stack.env);
      expect(run.code, run.stdout + run.stderr).to.equal(0);
      expect(run.stdout).to.match(new RegExp(`snapshot ${snap.snapshotId}: job completed, snapshot ready`));
      const ready = await stack.knex('community_snapshots').where({ id: snap.snapshotId }).first();
      expect(ready.status).to.equal('ready');
      expect(ready.copied_count).to.equal(ITEMS);
      const rows = await stack.knex('community_snapshot_media').where({ snapshot_id: snap.snapshotId });
      expect(rows.filter((r) => r.copied_at !== null)).to.have.length(ITEMS);
      for (const r of rows) expect(await stack.blobs.exists(stack.config.blobContainers.snapshots, r.blob_name), r.blob_name).to.equal(true);
    });
  });
});
