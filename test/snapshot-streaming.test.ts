import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { registerUser, type TestUser } from './helpers/app.js';
import { endlessBody } from './helpers/fixture-server.js';
import { patch } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { waitFor } from './helpers/wait.js';
import type { WorkerProcess } from './helpers/worker-process.js';

const MB = 1000 * 1000;
const ITEM_BYTES = 25 * MB;

/**
 * `bytes` deterministic bytes, 1 MiB at a time: a hash chain salted with the block's index, so no
 * two blocks are alike (nothing compresses or dedupes them). Made as they are sent, never kept.
 */
function* generated(bytes: number, seed: string): Generator<Buffer> {
  for (let i = 0, sent = 0; sent < bytes; i++) {
    const out = Buffer.alloc(Math.min(1024 * 1024, bytes - sent));
    let h = createHash('sha256').update(`${seed}:${i}`).digest();
    for (let at = 0; at < out.length; at += h.length) {
      h.copy(out, at);
      h = createHash('sha256').update(h).digest();
    }
    sent += out.length;
    yield out;
  }
}

function serveGenerated(bytes: number, seed: string): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': bytes });
    const chunks = generated(bytes, seed);
    const pump = (): void => {
      for (let next = chunks.next(); !next.done; next = chunks.next()) {
        if (!res.write(next.value)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  };
}

function sha256Of(bytes: number, seed: string): string {
  const hash = createHash('sha256');
  for (const chunk of generated(bytes, seed)) hash.update(chunk);
  return hash.digest('hex');
}

/** The worker process's resident memory now and at its peak since the last reset, in bytes (Linux /proc). */
function memoryOf(worker: WorkerProcess): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${worker.child.pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Sets the worker process's peak resident memory back to its current one (`clear_refs` 5). */
function resetPeak(worker: WorkerProcess): void {
  writeFileSync(`/proc/${worker.child.pid}/clear_refs`, '5');
}

describe('snapshot copies stream (worker process, Azurite)', function () {
  this.timeout(120_000);
  let stack: JobStack;
  let worker: WorkerProcess;
  // The worker's os.tmpdir(): its spool files are the only files there.
  let spoolRoot: string;

  before(async () => {
    // Fails rather than skips (the suite forbids pending tests): the peak memory reset is Linux's.
    if (!existsSync('/proc/self/clear_refs')) throw new Error('these tests measure peak memory through /proc/<pid>/clear_refs, which only Linux has');
    stack = await startJobStack();
    spoolRoot = mkdtempSync(path.join(os.tmpdir(), 'showrunner-test-spools-'));
    worker = await stack.startWorker({ TMPDIR: spoolRoot });
  });
  after(async () => {
    await stack?.close();
    if (spoolRoot) rmSync(spoolRoot, { recursive: true, force: true });
  });

  // tsx keeps its cache there too.
  const spools = (): string[] => readdirSync(spoolRoot).filter((name) => name.startsWith('showrunner-spool-'));
  const snapshotOf = (sessionId: number) => stack.knex('community_snapshots').where({ session_id: sessionId }).first();

  /** A manual-mode session whose media are exactly these paths on the fixture server (no sync, no thumbnail job). */
  async function sessionWith(user: TestUser, paths: string[]): Promise<number> {
    const category = await stack.knex('categories').where({ is_default: true }).first('id');
    const [row] = await stack.knex('sessions')
      .insert({ user_id: user.user.id, title: 'Big media', subreddits: ['big'], category_id: category.id, caption_theme: 'joi', is_manual_mode: true })
      .returning('id');
    await stack.knex('session_media').insert(paths.map((p, order) => ({ session_id: row.id, media_url: stack.fixture.url(p), type: 'image', order })));
    return row.id as number;
  }

  it('a 25 MB item is copied with the worker growing by under 64 MB at its peak; stored under its hash, no spool file left', async () => {
    const user = await registerUser(stack.t);
    stack.fixture.route('/big/one.jpg', serveGenerated(ITEM_BYTES, 'one'));
    const sessionId = await sessionWith(user, ['/big/one.jpg']);
    const before = memoryOf(worker);
    resetPeak(worker);
    await patch(stack.t, user, sessionId, { shareToCommunity: true });
    const done = await waitFor('the snapshot to finish', async () => {
      const s = await snapshotOf(sessionId);
      return s?.status === 'ready' || s?.status === 'failed' ? s : undefined;
    }, { timeoutMs: 90_000 });
    const after = memoryOf(worker);
    expect(done.status, done.last_error).to.equal('ready');
    expect(after.peak - before.rss, `peak ${after.peak} B against ${before.rss} B before`).to.be.below(64 * 1024 * 1024);

    const hash = sha256Of(ITEM_BYTES, 'one');
    const snapshot = await snapshotOf(sessionId);
    const [item] = await stack.knex('community_snapshot_media').where({ snapshot_id: snapshot.id });
    expect(item.blob_sha256).to.equal(hash);
    const stored = await stack.blobs.list(stack.config.blobContainers.snapshots, `media/sha256/${hash.slice(0, 2)}/${hash}`);
    expect(stored.map((b) => b.size)).to.deep.equal([ITEM_BYTES]);
    expect(spools()).to.deep.equal([]);
  });

  it('a body that grows past MEDIA_MAX_BYTES while streaming fails the snapshot and leaves no spool file', async () => {
    const user = await registerUser(stack.t);
    // No Content-Length: only the count while streaming can stop it.
    stack.fixture.route('/big/endless.jpg', (_req, res) => {
      res.writeHead(200, { 'content-type': 'image/jpeg' });
      endlessBody(res, Buffer.alloc(64 * 1024, 7));
    });
    const sessionId = await sessionWith(user, ['/big/endless.jpg']);
    await patch(stack.t, user, sessionId, { shareToCommunity: true });
    const failed = await waitFor('the snapshot to fail', async () => {
      const s = await snapshotOf(sessionId);
      return s?.status === 'failed' ? s : undefined;
    }, { timeoutMs: 90_000 });
    expect(failed.last_error).to.include('MEDIA_MAX_BYTES');
    expect(spools()).to.deep.equal([]);
  });

  it('a worker stopped mid-stream removes its spool file before it exits', async () => {
    const user = await registerUser(stack.t);
    // Sends a first part, larger than what a copy keeps in memory (1 MiB), then nothing: the download
    // stays in the middle of the body, spilled to its spool file, until stopped.
    const stalled: http.ServerResponse[] = [];
    stack.fixture.route('/big/stalled.jpg', (_req, res) => {
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': ITEM_BYTES });
      res.write(Buffer.alloc(2 * 1024 * 1024, 3));
      stalled.push(res);
    });
    const sessionId = await sessionWith(user, ['/big/stalled.jpg']);
    await patch(stack.t, user, sessionId, { shareToCommunity: true });
    await waitFor('a spool file with the first part in it', async () => {
      return spools().some((d) => readdirSync(path.join(spoolRoot, d)).length > 0);
    });
    await worker.stop();
    expect(spools()).to.deep.equal([]);
    expect((await snapshotOf(sessionId))?.status).to.not.equal('ready');
    for (const res of stalled) res.destroy();
  });
});
