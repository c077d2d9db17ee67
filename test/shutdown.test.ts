import http from 'node:http';
import { expect } from 'chai';
import { registerUser } from './helpers/app.js';
import { createSession, patch } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { startWebProcess } from './helpers/web-process.js';
import { waitFor } from './helpers/wait.js';

describe('graceful shutdown', function () {
  this.timeout(120_000);
  let stack: JobStack;
  before(async () => {
    stack = await startJobStack({ env: { SHUTDOWN_GRACE_MS: '1500', SNAPSHOT_COPY_PARALLELISM: '2' } });
  });
  after(async () => stack?.close());

  it('SIGTERM to a worker mid-snapshot: it exits within the grace period and a new worker completes the snapshot, once', async () => {
    const user = await registerUser(stack.t);
    const image = await stack.fixture.image('/media/slow-src.jpg', { width: 800, height: 600, format: 'jpeg' });
    const posts = Array.from({ length: 12 }, (_, i) => ({ id: `slow${i}`, kind: 'image' as const, path: `/media/slow${i}.jpg` }));
    for (const p of posts) {
      // Each copy takes a while, so the snapshot is mid-way when the signal comes.
      stack.fixture.route(p.path, (_req, res) => void setTimeout(() => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(image), 400));
    }
    stack.fixture.setListing(['slow'], posts);
    const worker = await stack.startWorker();
    const created = await createSession(stack.t, user, { title: 'Slow', subreddits: 'slow', thumbnail: 'https://cdn.example.test/t.png' });
    await waitFor('media synced', async () => (await stack.knex('session_media').where({ session_id: created.id })).length === 12);
    await patch(stack.t, user, created.id, { shareToCommunity: true });
    const snapshotId = await waitFor('some media copied', async () => {
      const s = await stack.knex('community_snapshots').where({ session_id: created.id }).first();
      return s && s.copied_count >= 2 && s.copied_count < 12 ? (s.id as number) : undefined;
    });

    worker.signal('SIGTERM');
    await waitFor('the worker to exit within the grace period', () => worker.hasExited(), { timeoutMs: 1500 + 5000 });
    const code = await worker.exited;
    expect(code, worker.output().slice(-2000)).to.equal(0);
    const midway = await stack.knex('community_snapshots').where({ id: snapshotId }).first();
    expect(midway.status).to.equal('copying');
    expect(midway.copied_count).to.be.lessThan(12);

    await stack.startWorker();
    const done = await waitFor('the snapshot to be ready', async () => {
      const s = await stack.knex('community_snapshots').where({ id: snapshotId }).first();
      return s?.status === 'ready' ? s : undefined;
    });
    expect(done.copied_count).to.equal(12);
    expect(done.media_count).to.equal(12);
    const rows = await stack.knex('community_snapshot_media').where({ snapshot_id: snapshotId });
    expect(rows).to.have.length(12);
    expect(new Set(rows.map((r) => r.blob_name)).size).to.equal(12);
    const blobs = await stack.blobs.list(stack.config.blobContainers.snapshots, `snapshots/${snapshotId}/`);
    expect(blobs.filter((b) => !b.name.includes('thumbnail')).map((b) => b.name).sort()).to.deep.equal(rows.map((r) => r.blob_name).sort());
    const createRow = await stack.knex('job_outbox').where({ queue: 'snapshots', job_name: 'create' }).whereRaw(`(payload->>'snapshotId')::int = ?`, [snapshotId]).first();
    const job = await stack.job('snapshots', createRow.id);
    expect(job?.state).to.equal('completed');
  });

  it('SIGTERM to the web process under load: every request it accepted is answered', async () => {
    const web = await startWebProcess(stack.env);
    const user = await registerUser(stack.t);
    const created = await createSession(stack.t, user, { title: 'Load', subreddits: 'load', thumbnail: 'https://cdn.example.test/t.png' });
    const before = (await stack.knex('sessions').where({ id: created.id }).first()).version as number;
    const { port } = new URL(web.baseUrl);

    let answered = 0;
    let serverErrors = 0;
    let refused = 0;
    let signalled = false;
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
        // A connection the server never took (closed listener, or reset from its backlog) was not accepted.
        req.on('error', () => {
          refused += 1;
          resolve();
        });
        req.end(body);
      });

    const clients = Array.from({ length: 16 }, async (_, c) => {
      for (let i = 0; !web.hasExited(); i++) {
        await one(c * 100_000 + i);
        if (!signalled && answered >= 100) {
          signalled = true;
          web.child.kill('SIGTERM');
        }
      }
    });
    await Promise.all(clients);
    expect(await web.exited).to.equal(0);
    expect(serverErrors, 'no request got an error response').to.equal(0);
    const after = (await stack.knex('sessions').where({ id: created.id }).first()).version as number;
    // Every PATCH the server applied was answered: no accepted request was dropped.
    expect(after - before).to.equal(answered);
    expect(answered).to.be.greaterThan(100);
    expect(refused).to.be.greaterThan(0);
  });
});
