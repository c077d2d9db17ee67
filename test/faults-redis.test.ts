import { expect } from 'chai';
import { registerUser } from './helpers/app.js';
import { createSession, patch } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { forEachRedis, type OwnedRedis } from './helpers/redis-kinds.js';
import { expectDurableSnapshotBlobs } from './helpers/durable-blobs.js';
import { waitFor } from './helpers/wait.js';
import { OUTBOX_QUEUE_NAMES } from '../workers/queues/contracts.js';

const SESSIONS = 50;
const ROUNDS = 10;
const PARALLEL = 8;

type Step = 'thumbnail' | 'share' | 'unshare';

/**
 * Each session's ten PATCHes, every one needing a job: a new thumbnail generation, or a share or
 * unshare (so a snapshot to copy or to purge). Even sessions end shared, odd ones unshared.
 */
function plan(index: number): Step[] {
  const steps: Step[] = [];
  let shared = false;
  const toggle = (): Step => ((shared = !shared) ? 'share' : 'unshare');
  for (let k = 0; k < ROUNDS; k++) {
    const last = k === ROUNDS - 1;
    if (index % 2 === 0) steps.push(k % 2 === 0 ? 'thumbnail' : toggle());
    else steps.push(k % 2 === 0 || last ? toggle() : 'thumbnail');
  }
  return steps;
}

/**
 * Redis is SIGKILLed while 500 PATCHes are being made, and started again later. Redis keeps its data
 * in an append-only file fsynced before each reply (how a queue's Redis should run), so what it
 * acknowledged before the kill is still there; what it did not is the outbox's to deliver.
 */
forEachRedis((kind) => describe(`faults: Redis killed and restarted during 500 PATCHes${kind.suffix}`, function () {
  this.timeout(180_000);
  let redis: OwnedRedis;
  let stack: JobStack;

  before(async () => {
    redis = await kind.startOwn({ persist: true });
    stack = await startJobStack({ redisUrl: redis.url, env: { SNAPSHOT_COPY_PARALLELISM: '2' } });
  });
  after(async () => {
    await stack?.close();
    await redis?.destroy();
  });

  it('every PATCH 2xx; every outbox row dispatched to one job; every effect exactly once', async () => {
    const user = await registerUser(stack.t);
    await stack.fixture.image('/media/outage.jpg', { width: 240, height: 180, format: 'jpeg' });
    stack.fixture.setListing(['outage'], [{ id: 'outage1', kind: 'image', path: '/media/outage.jpg' }]);
    const worker = await stack.startWorker();
    const sessions: number[] = [];
    for (let i = 0; i < SESSIONS; i++) sessions.push((await createSession(stack.t, user, { title: `Outage ${i}`, subreddits: 'outage' })).id);
    const steps = sessions.map((_, i) => plan(i));
    const firstPatchRow = Number((await stack.knex('job_outbox').max<{ max: number }[]>({ max: 'id' }))[0]!.max) + 1;

    let done = 0;
    let redisDown: Promise<void> | undefined;
    let redisUp: Promise<void> | undefined;
    /** The database's clock just before Redis is started again: nothing could be dispatched between the kill and then. */
    let restarting: Date | undefined;
    let downAt = -1;
    let upAt = -1;
    for (let round = 0; round < ROUNDS; round++) {
      const queue = sessions.map((id, i) => ({ id, step: steps[i]![round]! }));
      await Promise.all(
        Array.from({ length: PARALLEL }, async () => {
          for (let next = queue.shift(); next; next = queue.shift()) {
            const body = next.step === 'thumbnail' ? { thumbnail: '' } : { shareToCommunity: next.step === 'share' };
            await patch(stack.t, user, next.id, body);
            done += 1;
            // Partway through, Redis dies (mid-request for some); later it comes back. The PATCHes do not wait for either.
            if (done === 150) {
              downAt = done;
              redisDown = redis.stop();
            }
            if (done === 350) {
              upAt = done;
              redisUp = redisDown!.then(async () => {
                restarting = (await stack.knex.raw('SELECT clock_timestamp() AS t')).rows[0].t as Date;
                await redis.start();
              });
            }
          }
        }),
      );
    }
    await redisUp;
    expect([downAt, upAt]).to.deep.equal([150, 350]);
    expect(done).to.equal(SESSIONS * ROUNDS);

    // Exactly one outbox row per PATCH, and all of them dispatched once Redis is back.
    const rows = await waitFor(
      'every outbox row to be dispatched',
      async () => {
        const all = await stack.knex('job_outbox').orderBy('id');
        return all.every((r) => r.dispatched_at !== null) ? all : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(rows.filter((r) => r.id >= firstPatchRow)).to.have.length(SESSIONS * ROUNDS);
    // The outage was real: PATCHes made while Redis was down had their rows sent only after it came back.
    const leftBehind = rows.filter((r) => r.id >= firstPatchRow && r.created_at < restarting! && r.dispatched_at > restarting!);
    expect(leftBehind.length, 'rows written during the outage and dispatched after it').to.be.greaterThan(100);

    // Every row became exactly one job, and every job completed (the maintenance queue's scheduled
    // jobs are not outbox jobs: they wait for their next run by design).
    await waitFor(
      'every job to finish',
      async () => {
        const counts = await Promise.all(OUTBOX_QUEUE_NAMES.map((q) => stack.producer.queues[q].getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed')));
        const pending = counts.reduce((n, c) => n + c.waiting! + c.active! + c.delayed! + c.prioritized!, 0);
        const finished = counts.reduce((n, c) => n + c.completed! + c.failed!, 0);
        return pending === 0 && finished === rows.length;
      },
      { timeoutMs: 90_000 },
    );
    const states = await Promise.all(rows.map(async (r) => [r.id, (await stack.job(r.queue, r.id))?.state] as const));
    expect(states.filter(([, s]) => s !== 'completed'), 'jobs not completed').to.deep.equal([]);

    const thumbnails = stack.config.blobContainers.thumbnails;
    for (const [i, id] of sessions.entries()) {
      const session = await stack.knex('sessions').where({ id }).first();
      const thumbnailSteps = steps[i]!.filter((s) => s === 'thumbnail').length;
      // Every PATCH applied once; the thumbnail is the latest generation's, and the only one kept.
      expect(session.version, `session ${id}`).to.equal(1 + ROUNDS);
      expect(session.thumbnail_generation).to.equal(1 + thumbnailSteps);
      const name = `thumbnails/sessions/${id}/${session.thumbnail_generation}.webp`;
      expect(session.thumbnail, `session ${id}`).to.equal(stack.blobs.url(thumbnails, name));
      expect((await stack.blobs.list(thumbnails, `thumbnails/sessions/${id}/`)).map((b) => b.name)).to.deep.equal([name]);

      const created = (await stack.knex('job_outbox').where({ queue: 'snapshots', job_name: 'create' }).whereRaw(`(payload->>'sessionId')::int = ?`, [id]).pluck('payload')) as {
        snapshotId: number;
      }[];
      expect(created, `session ${id}: one snapshot per share`).to.have.length(steps[i]!.filter((s) => s === 'share').length);
      const live = await stack.knex('community_snapshots').where({ session_id: id });
      const shared = steps[i]!.filter((s) => s !== 'thumbnail').at(-1) === 'share';
      expect(session.share_to_community).to.equal(shared);
      if (shared) {
        expect(live, `session ${id}`).to.have.length(1);
        expect(live[0].status, `session ${id}: ${live[0].last_error}`).to.equal('ready');
        const media = await stack.knex('community_snapshot_media').where({ snapshot_id: live[0].id });
        expect(media).to.have.length(1);
        await expectDurableSnapshotBlobs(stack, live[0], `session ${id}`);
      } else {
        expect(live, `session ${id}`).to.have.length(0);
      }
      // Every snapshot that was unshared again is gone with its rows, and so its references (the
      // blobs themselves wait for the collector: test/durable-media.test.ts).
      for (const { snapshotId } of created.filter((c) => c.snapshotId !== live[0]?.id)) {
        expect(await stack.knex('community_snapshots').where({ id: snapshotId }), `snapshot ${snapshotId}`).to.deep.equal([]);
        expect(await stack.knex('community_snapshot_media').where({ snapshot_id: snapshotId })).to.deep.equal([]);
      }
    }
    expect(worker.hasExited()).to.equal(false);
  });
}));
