import http from 'node:http';
import net from 'node:net';
import { expect } from 'chai';
import { registerUser } from './helpers/app.js';
import { createSession, patch } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { startWebProcess } from './helpers/web-process.js';
import { expectDurableSnapshotBlobs } from './helpers/durable-blobs.js';
import { holdRowLock } from './helpers/row-lock.js';
import { waitFor } from './helpers/wait.js';

const ITEMS = 12;
/** Media served before the gate; then SNAPSHOT_COPY_PARALLELISM downloads wait at it. */
const FREE = 2;
const PARALLELISM = 2;

describe('graceful shutdown', function () {
  this.timeout(120_000);
  let stack: JobStack;
  before(async () => {
    stack = await startJobStack({ env: { SHUTDOWN_GRACE_MS: '1500', SNAPSHOT_COPY_PARALLELISM: String(PARALLELISM) } });
  });
  after(async () => stack?.close());

  /**
   * A shared session of ITEMS media whose first FREE answer at once and the rest only once `open()`
   * is called, its snapshot copied by the running worker as far as it can go: FREE items copied and
   * the next downloads (SNAPSHOT_COPY_PARALLELISM of them) waiting at the gate.
   */
  async function snapshotHeldMidway(prefix: string): Promise<{ snapshotId: number; outboxId: number; open(): void }> {
    const user = await registerUser(stack.t);
    const image = await stack.fixture.image(`/media/${prefix}-src.jpg`, { width: 800, height: 600, format: 'jpeg' });
    const held: http.ServerResponse[] = [];
    let opened = false;
    const serve = (res: http.ServerResponse): void => {
      if (!res.socket?.destroyed) res.writeHead(200, { 'content-type': 'image/jpeg' }).end(image);
    };
    const posts = Array.from({ length: ITEMS }, (_, i) => ({ id: `${prefix}${i}`, kind: 'image' as const, path: `/media/${prefix}${i}.jpg` }));
    posts.forEach((p, i) => stack.fixture.route(p.path, (_req, res) => (opened || i < FREE ? serve(res) : void held.push(res))));
    stack.fixture.setListing([prefix], posts);
    const created = await createSession(stack.t, user, { title: prefix, subreddits: prefix, thumbnail: 'https://cdn.example.test/t.png' });
    await waitFor('media synced', async () => (await stack.knex('session_media').where({ session_id: created.id })).length === ITEMS);
    const shared = await patch(stack.t, user, created.id, { shareToCommunity: true });
    const snapshotId = (shared.communitySnapshot as { id: number }).id;
    await waitFor('the snapshot copied as far as the gate lets it', async () => {
      const s = await stack.knex('community_snapshots').where({ id: snapshotId }).first();
      return s.copied_count === FREE && held.length === PARALLELISM;
    });
    const row = await stack.knex('job_outbox').where({ queue: 'snapshots', job_name: 'create' }).whereRaw(`(payload->>'snapshotId')::int = ?`, [snapshotId]).first();
    return {
      snapshotId,
      outboxId: row.id as number,
      open() {
        opened = true;
        for (const res of held.splice(0)) serve(res);
      },
    };
  }

  it('SIGTERM to a worker whose snapshot outlives SHUTDOWN_GRACE_MS: it exits 0 before the job can finish, the job is back in its queue with no attempt spent, and a new worker finishes it, once', async () => {
    const worker = await stack.startWorker();
    const snap = await snapshotHeldMidway('slow');
    const job = await stack.job('snapshots', snap.outboxId);
    expect(job).to.include({ state: 'active', attemptsMade: 0 });

    worker.signal('SIGTERM');
    // The gate stays shut until the worker is gone: the job cannot finish within any grace period,
    // so the worker exits only by handing it back when SHUTDOWN_GRACE_MS (1500 here) ends.
    expect(await worker.exited, worker.output().slice(-2000)).to.equal(0);
    expect(await stack.job('snapshots', snap.outboxId)).to.include({ state: 'waiting', attemptsMade: 0 });
    const midway = await stack.knex('community_snapshots').where({ id: snap.snapshotId }).first();
    expect(midway).to.include({ status: 'copying', copied_count: FREE });

    snap.open();
    const replacement = await stack.startWorker();
    const done = await waitFor('the snapshot to be ready', async () => {
      const s = await stack.knex('community_snapshots').where({ id: snap.snapshotId }).first();
      return s?.status === 'ready' ? s : undefined;
    });
    expect(done).to.include({ copied_count: ITEMS, media_count: ITEMS });
    const rows = await stack.knex('community_snapshot_media').where({ snapshot_id: snap.snapshotId });
    expect(rows).to.have.length(ITEMS);
    // Every item is served the same bytes, so all of them reference one content-addressed blob.
    const names = await expectDurableSnapshotBlobs(stack, done);
    expect(new Set(rows.map((r) => r.blob_sha256)).size).to.equal(1);
    expect(names).to.include(rows[0]!.blob_name);
    // One attempt in all, and the one that finished resumed where the first stopped.
    const finished = await waitFor('the job to complete', async () => {
      const j = await stack.job('snapshots', snap.outboxId);
      return j?.state === 'completed' ? j : undefined;
    });
    expect(finished.attemptsMade, `its failed attempts: ${finished.stacktrace.join('\n')}`).to.equal(1);
    expect(finished.returnvalue).to.deep.include({ status: 'ready', copied: ITEMS - FREE, skipped: FREE });
    expect(await replacement.stop()).to.equal(0);
  });

  it('SIGTERM to a worker whose snapshot can finish within SHUTDOWN_GRACE_MS: it finishes the job, in one attempt, then exits 0', async () => {
    const worker = await stack.startWorker({ SHUTDOWN_GRACE_MS: '60000' });
    const snap = await snapshotHeldMidway('late');
    worker.signal('SIGTERM');
    // The media arrive only once the worker has begun to shut down.
    await waitFor('the worker to begin its shutdown', () => worker.output().includes('"msg":"shutting down"'));
    snap.open();
    expect(await worker.exited, worker.output().slice(-2000)).to.equal(0);
    const job = await stack.job('snapshots', snap.outboxId);
    expect(job).to.include({ state: 'completed', attemptsMade: 1 });
    expect(job?.returnvalue).to.deep.include({ status: 'ready', copied: ITEMS, skipped: 0 });
    expect(await stack.knex('community_snapshots').where({ id: snap.snapshotId }).first()).to.include({ status: 'ready', copied_count: ITEMS });
  });

  it('SIGTERM to the web process under load: every request it accepted is answered, no connection is reset, and new ones are refused', async () => {
    // A pool for every client, so that each request in flight waits in PostgreSQL where the test can count it.
    const clientCount = 16;
    const web = await startWebProcess({ ...stack.env, SHUTDOWN_GRACE_MS: '20000', DATABASE_POOL_MAX: String(clientCount + 4) });
    const user = await registerUser(stack.t);
    const created = await createSession(stack.t, user, { title: 'Load', subreddits: 'load', thumbnail: 'https://cdn.example.test/t.png' });
    const before = (await stack.knex('sessions').where({ id: created.id }).first()).version as number;
    const { port } = new URL(web.baseUrl);

    let answered = 0;
    let serverErrors = 0;
    // Why requests failed, by error code: ECONNREFUSED (nothing listens) is the only one allowed.
    const failures: Record<string, number> = {};
    const one = (i: number): Promise<void> =>
      new Promise((resolve) => {
        const body = JSON.stringify({ title: `Load ${i}` });
        const req = http.request(
          { host: '127.0.0.1', port, method: 'PATCH', path: `/api/sessions/${created.id}`, agent: false,
            headers: { cookie: user.cookie, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' } },
          (res) => {
            res.resume();
            res.on('end', () => {
              if (res.statusCode === 200) answered += 1;
              else serverErrors += 1;
              resolve();
            });
            res.on('error', () => {
              serverErrors += 1;
              resolve();
            });
          },
        );
        req.on('error', (e: NodeJS.ErrnoException) => {
          const code = e.code ?? e.message;
          failures[code] = (failures[code] ?? 0) + 1;
          resolve();
        });
        req.end(body);
      });
    const clients = Array.from({ length: clientCount }, async (_, c) => {
      for (let i = 0; !web.hasExited(); i++) await one(c * 100_000 + i);
    });

    await waitFor('100 answers under load', () => answered >= 100, { intervalMs: 5 });
    // The session's row lock, held: every client's next PATCH is accepted and waits for it. With all
    // of them waiting, none is still connecting, so none can be caught in the listen backlog (which
    // the kernel resets when a listener closes, before the server could accept it).
    const lock = await holdRowLock(stack.knex, 'sessions', created.id);
    let inFlight: number;
    try {
      await waitFor('a PATCH from every client waiting on the session row', async () => (await lock.queued()) === clientCount, { intervalMs: 5 });
      inFlight = answered;
      web.child.kill('SIGTERM');
      // Stopped accepting: a new connection is refused.
      await waitFor('the web process to refuse connections', () => refusesConnections(Number(port)), { intervalMs: 5 });
    } finally {
      await lock.release();
    }
    await Promise.all(clients);
    expect(await web.exited).to.equal(0);
    expect(serverErrors, 'no request got an error response').to.equal(0);
    expect(Object.keys(failures).filter((code) => code !== 'ECONNREFUSED'), `failures besides refusals: ${JSON.stringify(failures)}`).to.deep.equal([]);
    expect(answered - inFlight, 'every request waiting when the signal came was answered').to.equal(clientCount);
    const after = (await stack.knex('sessions').where({ id: created.id }).first()).version as number;
    // Every PATCH the server applied was answered: no accepted request was dropped.
    expect(after - before).to.equal(answered);
  });
});

/** True when a connection to the port is refused (nothing listens); a connection that opens is closed at once. */
function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}
