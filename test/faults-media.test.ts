import { readFileSync } from 'node:fs';
import type http from 'node:http';
import { expect } from 'chai';
import { DownloadError, safeDownload } from '../workers/lib/safe-fetch.js';
import { registerUser, type TestUser } from './helpers/app.js';
import { decompressionBombPng } from './helpers/fixture-images.js';
import { endlessBody, startFixtureServer, type FixtureHandler, type FixtureServer } from './helpers/fixture-server.js';
import { createSession, outboxFor, patch, serveImages } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { waitFor } from './helpers/wait.js';
import type { WorkerProcess } from './helpers/worker-process.js';

const MAX_BYTES = 2 * 1024 * 1024;
/** A generous absolute ceiling for the worker's resident memory: bounded, not fast. */
const MEMORY_CEILING_MB = 400;

/** A response that never ends. */
function endless(contentType: string): FixtureHandler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': contentType });
    endlessBody(res, Buffer.alloc(64 * 1024, 0xff));
  };
}

/** Resident and peak resident memory of a process, in MB, from /proc. */
function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

/**
 * Media that try to hurt the worker: a decompression bomb, an endless body, content types that lie,
 * a redirect to a private address. Each is refused with a reason that says what it was; the worker
 * stays up, goes on to complete ordinary work, and its memory stays bounded.
 */
describe('faults: hostile media', function () {
  this.timeout(90_000);
  let stack: JobStack;
  let worker: WorkerProcess;
  let user: TestUser;

  before(async () => {
    stack = await startJobStack({ env: { MEDIA_MAX_BYTES: String(MAX_BYTES) } });
    worker = await stack.startWorker();
    user = await registerUser(stack.t);
  });
  after(async () => stack?.close());

  /** A session whose only post is served by `handler`; resolves with its thumbnail job once failed. */
  async function failedThumbnail(name: string, path: string, handler: FixtureHandler) {
    stack.fixture.route(path, handler);
    stack.fixture.setListing([name], [{ id: `${name}1`, kind: 'image', path }]);
    const created = await createSession(stack.t, user, { title: name, subreddits: name });
    const row = (await outboxFor(stack.knex, created.id)).find((r) => r.queue === 'thumbnails')!;
    const job = await waitFor(`the ${name} thumbnail job to fail`, async () => {
      const j = await stack.job('thumbnails', row.id);
      if (j?.state === 'completed') throw new Error(`the ${name} thumbnail job completed: ${JSON.stringify(j.returnvalue)}`);
      return j?.state === 'failed' ? j : undefined;
    });
    const session = await stack.knex('sessions').where({ id: created.id }).first();
    expect(session.thumbnail, `${name}: no thumbnail written`).to.equal(null);
    return job;
  }

  it('each hostile medium is refused with a clear reason, once, and the worker goes on, its memory bounded', async () => {
    const before = memoryOf(worker.child.pid!);
    const bomb = decompressionBombPng();
    const jpeg = (await serveImages(stack.fixture, 'warmup', 1))[0]!;
    const jpegBytes = Buffer.from(await (await fetch(stack.fixture.url(jpeg.path!))).arrayBuffer());

    const cases: { name: string; path: string; handler: FixtureHandler; reason: RegExp }[] = [
      {
        name: 'bomb',
        path: '/media/bomb.png',
        handler: (_req, res) => void res.writeHead(200, { 'content-type': 'image/png', 'content-length': bomb.length }).end(bomb),
        reason: /image cannot be made into a thumbnail: .*pixel limit/i,
      },
      {
        name: 'endless',
        path: '/media/endless.jpg',
        handler: endless('image/jpeg'),
        reason: new RegExp(`body exceeds MEDIA_MAX_BYTES \\(${MAX_BYTES} bytes\\); aborted after \\d+ bytes`),
      },
      {
        name: 'htmlasjpeg',
        path: '/media/page.jpg',
        handler: (_req, res) => void res.writeHead(200, { 'content-type': 'image/jpeg' }).end('<!doctype html><html><body><script>alert(1)</script></body></html>'),
        reason: /image cannot be made into a thumbnail: .*unsupported image format/i,
      },
      {
        name: 'jpegashtml',
        path: '/media/real.jpg',
        handler: (_req, res) => void res.writeHead(200, { 'content-type': 'text/html' }).end(jpegBytes),
        reason: /answered with content type text\/html, which is not accepted here/,
      },
    ];
    for (const c of cases) {
      const job = await failedThumbnail(c.name, c.path, c.handler);
      expect(job.failedReason, c.name).to.match(c.reason);
      expect(job.attemptsMade, `${c.name}: no retry for what a retry cannot fix`).to.equal(1);
    }

    // An endless subreddit listing: the media sync job stops at the same bound.
    stack.fixture.route('/r/endlesslisting/hot.json', endless('application/json'));
    const listing = await createSession(stack.t, user, { title: 'Endless listing', subreddits: 'endlesslisting', thumbnail: 'https://cdn.example.test/t.png' });
    const syncRow = (await outboxFor(stack.knex, listing.id)).find((r) => r.queue === 'media')!;
    const sync = await waitFor('the endless listing sync to fail', async () => {
      const j = await stack.job('media', syncRow.id);
      return j?.state === 'failed' ? j : undefined;
    });
    expect(sync.failedReason).to.match(/body exceeds MEDIA_MAX_BYTES/);

    // A snapshot of media whose type lies (an image labelled as HTML) fails, naming the item and why.
    stack.fixture.route('/media/snap-real.jpg', (_req, res) => void res.writeHead(200, { 'content-type': 'text/html' }).end(jpegBytes));
    stack.fixture.setListing(['liar'], [{ id: 'liar1', kind: 'image', path: '/media/snap-real.jpg' }]);
    const liar = await createSession(stack.t, user, { title: 'Liar', subreddits: 'liar', thumbnail: 'https://cdn.example.test/t.png' });
    await waitFor('media synced', async () => (await stack.knex('session_media').where({ session_id: liar.id })).length === 1);
    await patch(stack.t, user, liar.id, { shareToCommunity: true });
    const snap = await waitFor('the snapshot to fail', async () => {
      const s = await stack.knex('community_snapshots').where({ session_id: liar.id }).first();
      return s?.status === 'failed' ? s : undefined;
    });
    expect(snap.last_error).to.match(/item 0 .*snap-real\.jpg.*content type text\/html, which is not accepted here/);
    expect(await stack.blobs.list(stack.config.blobContainers.snapshots, `snapshots/${snap.id}/`)).to.deep.equal([]);

    // An SVG is an image, but a public one could run script on the storage domain: refused.
    stack.fixture.route('/media/script.svg', (_req, res) =>
      void res.writeHead(200, { 'content-type': 'image/svg+xml' }).end('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
    );
    stack.fixture.setListing(['svgs'], [{ id: 'svg1', kind: 'image', path: '/media/script.svg' }]);
    const svg = await createSession(stack.t, user, { title: 'SVG', subreddits: 'svgs', thumbnail: 'https://cdn.example.test/t.png' });
    await waitFor('media synced', async () => (await stack.knex('session_media').where({ session_id: svg.id })).length === 1);
    await patch(stack.t, user, svg.id, { shareToCommunity: true });
    const svgSnap = await waitFor('the SVG snapshot to fail', async () => {
      const s = await stack.knex('community_snapshots').where({ session_id: svg.id }).first();
      return s?.status === 'failed' ? s : undefined;
    });
    expect(svgSnap.last_error).to.match(/image\/svg\+xml, which is not accepted here/);
    expect(await stack.blobs.list(stack.config.blobContainers.snapshots, `snapshots/${svgSnap.id}/`)).to.deep.equal([]);

    // Still up, still working: an ordinary session gets its thumbnail.
    await serveImages(stack.fixture, 'afterwards', 1);
    const ok = await createSession(stack.t, user, { title: 'Afterwards', subreddits: 'afterwards' });
    await waitFor('an ordinary thumbnail', async () => (await stack.knex('sessions').where({ id: ok.id }).first()).thumbnail);
    expect(worker.hasExited()).to.equal(false);
    const after = memoryOf(worker.child.pid!);
    expect(after.peakMb, `worker memory before ${before.rssMb.toFixed(0)} MB, after ${after.rssMb.toFixed(0)} MB, peak ${after.peakMb.toFixed(0)} MB`).to.be.lessThan(MEMORY_CEILING_MB);
    expect(worker.output()).to.not.match(/"level":60/);
  });

  describe('a redirect to a private address', () => {
    let fixture: FixtureServer;
    let inside: FixtureServer;
    before(async () => {
      fixture = await startFixtureServer();
      // Stands for an internal service on the same host: a different origin, so not trusted.
      inside = await startFixtureServer();
    });
    after(async () => {
      await fixture?.close();
      await inside?.close();
    });

    it('is refused at the redirect, naming the address, without connecting to it', async () => {
      // The fixture origin is trusted (it is on loopback too); everywhere it redirects to is checked.
      const options = { allowPrivateHosts: false, maxBytes: MAX_BYTES, trustedOrigins: [fixture.baseUrl], accept: (t: string) => t.startsWith('image/') };
      inside.route('/secret.png', (_req, res) => void res.writeHead(200, { 'content-type': 'image/png' }).end(decompressionBombPng({ width: 10, height: 10 })));
      const { port } = new URL(inside.baseUrl);
      const targets: [string, RegExp][] = [
        [inside.url('/secret.png'), /127\.0\.0\.1 \(loopback\)/],
        [`http://localhost:${port}/secret.png`, /\(loopback\)/],
        ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 \(link-local \(cloud metadata range\)\)/],
        ['http://10.0.0.7/admin', /10\.0\.0\.7 \(private\)/],
        ['http://[::ffff:127.0.0.1]/x', /loopback, as IPv6/],
        ['http://[fd00::1]/x', /private \(unique local\)/],
      ];
      for (const [i, [target, reason]] of targets.entries()) {
        fixture.route(`/hop${i}`, (_req: http.IncomingMessage, res: http.ServerResponse) => void res.writeHead(302, { location: target }).end());
        let error: unknown;
        try {
          await safeDownload(fixture.url(`/hop${i}`), options);
        } catch (e) {
          error = e;
        }
        expect(error, target).to.be.instanceOf(DownloadError);
        const e = error as DownloadError;
        expect(e.reason, target).to.equal('private_address');
        expect(e.retryable).to.equal(false);
        expect(e.message, target).to.match(/refused: resolves to a private address/).and.to.match(reason);
      }
      expect(inside.hits('/secret.png'), 'the internal service was never reached').to.equal(0);
    });
  });
});
