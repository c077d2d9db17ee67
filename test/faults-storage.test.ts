import { expect } from 'chai';
import { pino } from 'pino';
import supertest from 'supertest';
import { createApp } from '../server/app.js';
import { registerUser, type TestUser } from './helpers/app.js';
import { makeImage } from './helpers/fixture-images.js';
import { createSession, patch } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { runScriptFile } from './helpers/script.js';
import { waitFor } from './helpers/wait.js';

const MEDIA = 6;

/**
 * Blob storage (the stack's Azurite, keeping its data on disk) goes away while snapshots copy:
 * their jobs fail, back off and retry, and complete once it returns. A snapshot whose every attempt
 * fails ends `failed` with the reason, and `npm run snapshots:rerun` brings it to `ready`.
 */
describe('faults: blob storage outage during snapshots', function () {
  this.timeout(120_000);
  let stack: JobStack;
  let user: TestUser;
  let app: ReturnType<typeof supertest.agent>;

  before(async () => {
    // Quick retries, so eight attempts (waits of 20, 40 … 1280 ms: a 2540 ms horizon) run out within
    // the test's patience; each attempt's uploads still try three times inside the storage client.
    stack = await startJobStack({
      storageOnDisk: true,
      env: { JOB_BACKOFF_MS: '20', JOB_MAX_BACKOFF_MS: '1280', JOB_RETRY_HORIZON_MS: '2540', SNAPSHOT_COPY_PARALLELISM: '2' },
    });
    app = supertest.agent(createApp({ config: stack.config, knex: stack.knex, logger: pino({ level: 'silent' }), queues: stack.producer, blobs: stack.blobs }).callback());
    user = await registerUser(stack.t);
    await stack.startWorker();
  });
  after(async () => stack?.close());

  const snapshotOf = (sessionId: number) => stack.knex('community_snapshots').where({ session_id: sessionId }).first();
  const createRowOf = async (snapshotId: number) =>
    (await stack.knex('job_outbox').where({ queue: 'snapshots', job_name: 'create' }).whereRaw(`(payload->>'snapshotId')::int = ?`, [snapshotId]).orderBy('id').first()).id as number;

  /**
   * A session whose media are synced; each media answer takes `delayMs`. Every item has bytes of its
   * own: stored bytes are never uploaded again, so an item sharing another's bytes would need no
   * storage at all and could not fail while it is down.
   */
  async function sessionWithMedia(name: string, delayMs: number): Promise<number> {
    await stack.fixture.image(`/media/${name}-src.jpg`, { width: 320, height: 240, format: 'jpeg' });
    const posts = Array.from({ length: MEDIA }, (_, i) => ({ id: `${name}${i}`, kind: 'image' as const, path: `/media/${name}${i}.jpg` }));
    for (const p of posts) {
      const image = await makeImage({ width: 320, height: 240, format: 'jpeg', seed: p.path });
      stack.fixture.route(p.path, (_req, res) => void setTimeout(() => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(image), delayMs));
    }
    stack.fixture.setListing([name], posts);
    const created = await createSession(stack.t, user, { title: name, subreddits: name, thumbnail: stack.fixture.url(`/media/${name}-src.jpg`) });
    await waitFor('media synced', async () => (await stack.knex('session_media').where({ session_id: created.id })).length === MEDIA);
    return created.id;
  }

  async function expectComplete(snapshotId: number): Promise<void> {
    const rows = await stack.knex('community_snapshot_media').where({ snapshot_id: snapshotId }).orderBy('order');
    expect(rows).to.have.length(MEDIA);
    const recorded = await stack.knex('durable_blobs').whereIn('sha256', rows.map((r) => r.blob_sha256)).pluck('blob_name');
    expect([...recorded].sort(), 'every item references a recorded blob').to.deep.equal(rows.map((r) => r.blob_name as string).sort());
    // Every blob is there and whole after the restart: its bytes match what was recorded.
    for (const r of rows) {
      const body = await stack.blobs.download(stack.config.blobContainers.snapshots, r.blob_name);
      expect(body.length).to.equal(Number(r.bytes));
    }
  }

  /**
   * Once every copy has settled, storage holds exactly what durable_blobs records: an upload that an
   * outage cut short left no stray blob, and no recorded blob is missing.
   */
  async function expectStoredAsRecorded(): Promise<void> {
    const stored = (await stack.blobs.list(stack.config.blobContainers.snapshots, 'media/sha256/')).map((b) => b.name).sort();
    const recorded = ((await stack.knex('durable_blobs').pluck('blob_name')) as string[]).sort();
    expect(recorded, 'blobs recorded').to.have.length.above(0);
    expect(stored, 'the media/sha256/ listing against durable_blobs').to.deep.equal(recorded);
  }

  it('snapshots copying when storage goes away retry, and complete once it is back', async () => {
    const sessions: number[] = [];
    for (const name of ['outa', 'outb', 'outc']) sessions.push(await sessionWithMedia(name, 150));
    const snapshots: number[] = [];
    for (const id of sessions) snapshots.push(((await patch(stack.t, user, id, { shareToCommunity: true })).communitySnapshot as { id: number }).id);

    await waitFor('copying to have started', async () => (await Promise.all(sessions.map(snapshotOf))).some((s) => s.copied_count > 0), { intervalMs: 10 });
    await stack.azurite.stop();
    try {
      // Down long enough for attempts to fail and be retried.
      await waitFor(
        'two failed attempts while storage is down',
        async () => {
          const rows = await Promise.all(sessions.map(snapshotOf));
          return rows.reduce((n, s) => n + (s.last_error ? Number(s.attempts) : 0), 0) >= 2 + rows.filter((s) => s.last_error).length;
        },
        { timeoutMs: 30_000 },
      );
      const down = await app.get('/readyz').expect(503);
      expect(down.body.message).to.match(/blobStorage/);
      const during = await Promise.all(sessions.map(snapshotOf));
      expect(during.some((s) => /blob storage: (upload|check) .* failed/.test(s.last_error ?? ''))).to.equal(true);
      expect(during.every((s) => s.status !== 'failed'), 'no snapshot ran out of attempts').to.equal(true);
    } finally {
      await stack.azurite.restart();
    }
    await app.get('/readyz').expect(200);

    for (const [i, id] of sessions.entries()) {
      const done = await waitFor(`snapshot ${snapshots[i]} ready`, async () => {
        const s = await snapshotOf(id);
        if (s.status === 'failed') throw new Error(`snapshot ${s.id} failed: ${s.last_error}`);
        return s.status === 'ready' ? s : undefined;
      }, { timeoutMs: 30_000 });
      expect(done.copied_count).to.equal(MEDIA);
      expect(done.last_error).to.equal(null);
      await expectComplete(snapshots[i]!);
      // The snapshot is ready inside the job's last step; BullMQ marks the job completed just after.
      const outboxId = await createRowOf(snapshots[i]!);
      await waitFor(`snapshot ${snapshots[i]}'s job completed`, async () => (await stack.job('snapshots', outboxId))?.state === 'completed');
    }
    const retried = await Promise.all(snapshots.map(async (s) => (await stack.job('snapshots', await createRowOf(s)))!.attemptsMade));
    expect(Math.max(...retried), `attempts per job: ${retried.join(', ')}`).to.be.greaterThan(0);
    await expectStoredAsRecorded();
  });

  it('a snapshot whose retries run out ends failed with the reason; snapshots:rerun brings it to ready', async () => {
    const id = await sessionWithMedia('outlong', 0);
    await stack.azurite.stop();
    let snapshotId: number;
    try {
      snapshotId = ((await patch(stack.t, user, id, { shareToCommunity: true })).communitySnapshot as { id: number }).id;
      const failed = await waitFor('the snapshot to fail', async () => {
        const s = await snapshotOf(id);
        return s.status === 'failed' ? s : undefined;
      }, { timeoutMs: 60_000 });
      expect(failed.last_error).to.match(new RegExp(`^${MEDIA} of ${MEDIA} media failed to copy; first: item 0 \\(.*\\): blob storage: (upload|check) ${stack.config.blobContainers.snapshots}/media/sha256/[0-9a-f]{2}/[0-9a-f]{64}\\.jpg failed: .*ECONNREFUSED`));
      // The worker records the snapshot's failure inside its last attempt, so BullMQ moves the job
      // to failed just after: wait for that, not for the row alone.
      const outboxId = await createRowOf(snapshotId);
      const job = await waitFor('the job to fail', async () => {
        const j = await stack.job('snapshots', outboxId);
        return j?.state === 'failed' ? j : undefined;
      });
      expect(job.attemptsMade).to.equal(8);
      expect(failed.attempts).to.equal(8);
      expect(failed.copied_count).to.equal(0);
    } finally {
      await stack.azurite.restart();
    }

    const run = await runScriptFile('snapshots-rerun.ts', ['--status', 'failed', '--wait', '--timeout', '60'], stack.env);
    expect(run.code, run.stdout + run.stderr).to.equal(0);
    expect(run.stdout).to.match(new RegExp(`snapshot ${snapshotId}: job completed, snapshot ready`)).and.to.match(/summary: 1 ready, 0 not ready/);
    const ready = await snapshotOf(id);
    expect(ready.status).to.equal('ready');
    expect(ready.copied_count).to.equal(MEDIA);
    await expectComplete(snapshotId);
    await expectStoredAsRecorded();
  });
});
