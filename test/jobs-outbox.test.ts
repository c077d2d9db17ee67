import { expect } from 'chai';
import { OUTBOX_QUEUE_NAMES, outboxJobId } from '../workers/queues/contracts.js';
import { registerUser } from './helpers/app.js';
import { createSession, patch, serveImages } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { forEachRedis, forEachStore, type OwnedRedis } from './helpers/redis-kinds.js';
import { expectDurableSnapshotBlobs } from './helpers/durable-blobs.js';
import { waitFor } from './helpers/wait.js';

forEachRedis((kind) => describe(`outbox: nothing lost, nothing doubled${kind.suffix}`, function () {
  this.timeout(90_000);

  describe('Redis unreachable during PATCHes', () => {
    let redis: OwnedRedis;
    let stack: JobStack;
    before(async () => {
      redis = await kind.startOwn();
      stack = await startJobStack({ redisUrl: redis.url });
    });
    after(async () => {
      await stack?.close();
      await redis?.destroy();
    });

    it('answers every PATCH 200, then the relay dispatches every row once and each effect happens once', async () => {
      const user = await registerUser(stack.t);
      await serveImages(stack.fixture, 'outage', 1);
      const sessions = [];
      for (let i = 0; i < 5; i++) sessions.push(await createSession(stack.t, user, { title: `S${i}`, subreddits: 'outage' }));
      await waitFor('the creation rows to be dispatched', async () => {
        const left = await stack.knex('job_outbox').whereNull('dispatched_at').count<{ count: number }[]>({ count: '*' });
        return Number(left[0]!.count) === 0;
      });
      const before = Number((await stack.knex('job_outbox').max<{ max: number }[]>({ max: 'id' }))[0]!.max);

      await redis.stop();
      for (const s of sessions) {
        await patch(stack.t, user, s.id, { thumbnail: '' });
        await patch(stack.t, user, s.id, { shareToCommunity: true });
      }
      const written = await stack.knex('job_outbox').where('id', '>', before).orderBy('id');
      expect(written).to.have.length(10);
      expect(written.every((r) => r.dispatched_at === null)).to.equal(true);

      await redis.start();
      const worker = await stack.startWorker();
      await waitFor('every outbox row to be dispatched', async () =>
        (await stack.knex('job_outbox').where('id', '>', before).whereNull('dispatched_at')).length === 0,
      );
      const rows = await stack.knex('job_outbox').where('id', '>', before).orderBy('id');
      for (const row of rows) {
        const job = await waitFor(`job outbox-${row.id} to complete`, async () => {
          const j = await stack.job(row.queue, row.id);
          return j?.state === 'completed' ? j : undefined;
        });
        expect(job.attemptsMade, `outbox-${row.id} ran once; its failed attempts: ${job.stacktrace.join('\n')}`).to.equal(1);
      }
      for (const s of sessions) {
        const session = await stack.knex('sessions').where({ id: s.id }).first();
        expect(session.thumbnail).to.equal(stack.blobs.url(stack.config.blobContainers.thumbnails, `thumbnails/sessions/${s.id}/2.webp`));
        const snapshots = await stack.knex('community_snapshots').where({ session_id: s.id });
        expect(snapshots).to.have.length(1);
        expect(snapshots[0].status).to.equal('ready');
        expect(await stack.knex('community_snapshot_media').where({ snapshot_id: snapshots[0].id })).to.have.length(1);
        await expectDurableSnapshotBlobs(stack, snapshots[0]);
      }
      const counts = await Promise.all(OUTBOX_QUEUE_NAMES.map((q) => stack.producer.queues[q].getJobCountByTypes('completed', 'failed', 'waiting', 'active', 'delayed')));
      // The restarted Redis is empty: exactly the relayed rows' jobs are there, no more (the
      // maintenance queue's scheduled jobs come from no outbox row).
      expect(counts.reduce((a, b) => a + b, 0)).to.equal(rows.length);
      expect(worker.output()).to.not.match(/"level":50/);
    });
  });
}));

// The fast path and the relay on every job store: one Redis, a Redis Cluster, and PostgreSQL.
forEachStore((store) => describe(`outbox: each row one job${store.suffix}`, function () {
  this.timeout(90_000);

  describe("the API's after-COMMIT fast path, with no relay running", () => {
    let stack: JobStack;
    before(async () => {
      stack = await store.jobStack();
    });
    after(async () => stack?.close());

    it('adds each job its transactions wrote under the row id, with the row payload, and marks every row dispatched once', async () => {
      const user = await registerUser(stack.t);
      // No worker: nothing but the API's fast path can dispatch these rows or mark them.
      const sessions = await Promise.all(Array.from({ length: 12 }, (_, i) => createSession(stack.t, user, { title: `F${i}`, subreddits: 'fastpath' })));
      await Promise.all(sessions.map((s) => patch(stack.t, user, s.id, { thumbnail: '' })));
      await waitFor('every row marked dispatched', async () => (await stack.knex('job_outbox').whereNull('dispatched_at')).length === 0);
      const rows = await stack.knex('job_outbox').orderBy('id');
      expect(rows).to.have.length(12 * 3);
      expect(rows.map((r) => r.attempts), 'one dispatch per row').to.deep.equal(rows.map(() => 1));
      const jobs = await Promise.all(rows.map((r) => stack.producer.queues[r.queue as 'media' | 'thumbnails'].getJob(outboxJobId(r.id))));
      expect(jobs.map((j) => j && { name: j.name, data: j.data })).to.deep.equal(rows.map((r) => ({ name: r.job_name, data: r.payload })));
      const waiting = await Promise.all(OUTBOX_QUEUE_NAMES.map((q) => stack.producer.queues[q].getJobCountByTypes('waiting', 'active', 'delayed', 'completed', 'failed')));
      expect(waiting.reduce((a, b) => a + b, 0), 'one job per row, no other').to.equal(rows.length);
    });
  });

  describe('two worker processes relaying one backlog', () => {
    let stack: JobStack;
    before(async () => {
      stack = await store.jobStack({ fastPath: false });
    });
    after(async () => stack?.close());

    it('dispatches each outbox row exactly once', async () => {
      const user = await registerUser(stack.t);
      await serveImages(stack.fixture, 'backlog', 1);
      for (let i = 0; i < 30; i++) await createSession(stack.t, user, { title: `B${i}`, subreddits: 'backlog' });
      const backlog = await stack.knex('job_outbox').orderBy('id');
      expect(backlog).to.have.length(60);
      expect(backlog.every((r) => r.dispatched_at === null)).to.equal(true);

      await Promise.all([stack.startWorker(), stack.startWorker()]);
      await waitFor('the backlog to be dispatched', async () => (await stack.knex('job_outbox').whereNull('dispatched_at')).length === 0);
      const rows = await stack.knex('job_outbox').orderBy('id');
      // `attempts` counts dispatches: one each means no row went to Redis twice.
      expect(rows.map((r) => r.attempts)).to.deep.equal(rows.map(() => 1));
      await waitFor('every job to complete', async () => {
        const states = await Promise.all(rows.map((r) => stack.job(r.queue, r.id)));
        return states.every((s) => s?.state === 'completed');
      });
      const total = await stack.producer.queues.media.getJobCountByTypes('completed', 'failed', 'waiting', 'active', 'delayed');
      expect(total).to.equal(30);
    });
  });
}));
