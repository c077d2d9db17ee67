import { expect } from 'chai';
import { azuriteConnectionString } from '../scripts/lib/azurite.js';
import { registerUser, type TestUser } from './helpers/app.js';
import { expectDurableSnapshotBlobs } from './helpers/durable-blobs.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { createSession, patch, serveImages } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { waitFor } from './helpers/wait.js';
import type { WorkerProcess } from './helpers/worker-process.js';

/** The storage deadline of the worker under test: the 30 s, scaled down with its 45 s silence. */
const STORAGE_TIMEOUT_MS = 1500;
const MEDIA = 4;

/**
 * Blob storage goes silent behind a TCP proxy (connections open then are never answered again, new
 * ones are held until the network heals). Each storage call of a job has a deadline that aborts its
 * socket: the attempt fails saying so while storage is still silent, gives its slot back and retries;
 * after the heal every effect happens exactly once. Without the deadline the uploads never end.
 */
describe('faults: blob storage silent behind a proxy', function () {
  this.timeout(120_000);
  let stack: JobStack;
  let proxy: FaultProxy;
  let worker: WorkerProcess;
  let user: TestUser;

  before(async () => {
    stack = await startJobStack({ env: { JOB_BACKOFF_MS: '200', JOB_MAX_BACKOFF_MS: '1000', JOB_RETRY_HORIZON_MS: '120000', SNAPSHOT_COPY_PARALLELISM: '2' } });
    proxy = await startFaultProxy({ host: stack.azurite.host, port: stack.azurite.port });
    // The worker reaches storage only through the proxy; the test reads it directly.
    worker = await stack.startWorker({
      AZURE_STORAGE_CONNECTION_STRING: azuriteConnectionString(proxy.host, proxy.port),
      STORAGE_TIMEOUT_MS: String(STORAGE_TIMEOUT_MS),
    });
    user = await registerUser(stack.t);
  });
  afterEach(() => proxy.pass());
  after(async () => {
    await proxy?.close();
    await stack?.close();
  });

  const timedOut = new RegExp(`blob storage: \\w+ .* timed out after ${STORAGE_TIMEOUT_MS / 1000} s`);

  it('thumbnail uploads stuck on the silence end at their deadline and retry; after the heal each thumbnail is written once', async () => {
    await serveImages(stack.fixture, 'quietblob', 2, { width: 320, height: 240 });
    const sessions: number[] = [];
    for (let i = 0; i < 3; i++) sessions.push((await createSession(stack.t, user, { title: `Quiet ${i}`, subreddits: 'quietblob' })).id);
    const thumbnailOf = async (id: number) => (await stack.knex('sessions').where({ id }).first()) as { thumbnail: string | null; thumbnail_generation: number };
    // Warm: the first thumbnails leave kept-alive connections to storage, which the silence freezes.
    for (const id of sessions) await waitFor(`session ${id}'s first thumbnail`, async () => (await thumbnailOf(id)).thumbnail?.endsWith('/1.webp'));

    proxy.silent();
    const outboxIds: number[] = [];
    for (const id of sessions) {
      await patch(stack.t, user, id, { thumbnail: '' });
      outboxIds.push((await stack.knex('job_outbox').where({ queue: 'thumbnails' }).whereRaw(`(payload->>'sessionId')::int = ?`, [id]).max<{ max: number }[]>({ max: 'id' }))[0]!.max);
    }
    // Every job's upload ends at its deadline while storage is still silent: the slot is given back.
    const jobs = await waitFor(
      'every thumbnail job to have failed an attempt at its storage deadline while storage is silent',
      async () => {
        const all = await Promise.all(outboxIds.map((id) => stack.job('thumbnails', id)));
        return all.every((j) => j?.stacktrace.some((s) => timedOut.test(s))) && all;
      },
      { timeoutMs: 30_000 },
    );
    expect(proxy.mode().kind).to.equal('silent');
    expect(jobs.map((j) => j!.state)).to.not.include('failed');

    proxy.pass();
    for (const [i, id] of sessions.entries()) {
      await waitFor(`session ${id}'s second thumbnail after the heal`, async () => (await thumbnailOf(id)).thumbnail?.endsWith('/2.webp'), { timeoutMs: 60_000 });
      await waitFor(`job ${outboxIds[i]} completed`, async () => (await stack.job('thumbnails', outboxIds[i]!))?.state === 'completed');
      const blobs = await stack.blobs.list(stack.config.blobContainers.thumbnails, `thumbnails/sessions/${id}/`);
      expect(blobs.map((b) => b.name), `session ${id}: one thumbnail, the latest`).to.deep.equal([`thumbnails/sessions/${id}/2.webp`]);
    }
    expect(worker.hasExited()).to.equal(false);
  });

  it('snapshot copies stuck on the silence end at their deadline and retry; after the heal the snapshot is whole, each item stored once', async () => {
    await serveImages(stack.fixture, 'quietsnap', MEDIA, { width: 320, height: 240 });
    const { id } = await createSession(stack.t, user, { title: 'Quiet snapshot', subreddits: 'quietsnap' });
    await waitFor('media synced', async () => (await stack.knex('session_media').where({ session_id: id })).length === MEDIA);

    proxy.silent();
    const snapshotId = ((await patch(stack.t, user, id, { shareToCommunity: true })).communitySnapshot as { id: number }).id;
    const snapshotRow = () => stack.knex('community_snapshots').where({ id: snapshotId }).first();
    await waitFor('the copy to have failed an attempt at its storage deadline while storage is silent', async () => timedOut.test((await snapshotRow()).last_error ?? ''), {
      timeoutMs: 30_000,
    });
    expect(proxy.mode().kind).to.equal('silent');
    expect((await snapshotRow()).status).to.not.equal('failed');

    proxy.pass();
    const ready = await waitFor('the snapshot ready after the heal', async () => {
      const s = await snapshotRow();
      if (s.status === 'failed') throw new Error(`snapshot failed: ${s.last_error}`);
      return s.status === 'ready' && s;
    }, { timeoutMs: 60_000 });
    expect(ready.copied_count).to.equal(MEDIA);
    expect(await stack.knex('community_snapshot_media').where({ snapshot_id: snapshotId })).to.have.length(MEDIA);
    await expectDurableSnapshotBlobs(stack, ready);
    expect(worker.hasExited()).to.equal(false);
  });
});
