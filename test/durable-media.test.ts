import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { registerUser, type TestUser } from './helpers/app.js';
import { createSession, patch, serveImages } from './helpers/flows.js';
import { makeImage } from './helpers/fixture-images.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { runScriptFile } from './helpers/script.js';
import { waitFor } from './helpers/wait.js';
import { runMaintenanceTask } from '../workers/processors/maintenance.js';
import { referenceDurableBlobs } from '../db/durable-blobs.js';
import { recordSnapshotCopies } from '../db/snapshots.js';
import { durableBlobName } from '../workers/storage/durable-media.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A proxy in front of Azurite that counts the request bytes of every upload (PUT) it forwards. */
async function countingProxy(target: string): Promise<{ url: string; uploaded: () => number; reset: () => void; close: () => Promise<void> }> {
  const to = new URL(target);
  let uploaded = 0;
  const server = http.createServer((req, res) => {
    const upstream = http.request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.on('data', (chunk: Buffer) => {
      if (req.method === 'PUT') uploaded += chunk.length;
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    uploaded: () => uploaded,
    reset: () => (uploaded = 0),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('durable media are content-addressed (worker process, Azurite)', function () {
  this.timeout(90_000);
  let stack: JobStack;
  let proxy: Awaited<ReturnType<typeof countingProxy>>;

  before(async () => {
    stack = await startJobStack();
    const endpoint = /BlobEndpoint=(http:\/\/[^/;]+)/.exec(stack.azurite.connectionString)![1]!;
    proxy = await countingProxy(endpoint);
    // The worker reaches storage only through the proxy, so the proxy sees every byte it uploads.
    await stack.startWorker({ AZURE_STORAGE_CONNECTION_STRING: stack.azurite.connectionString.replace(endpoint, proxy.url) });
  });
  after(async () => {
    await stack?.close();
    await proxy?.close();
  });

  const container = (): string => stack.config.blobContainers.snapshots;
  const durableNames = async (): Promise<string[]> => (await stack.blobs.list(container(), 'media/sha256/')).map((b) => b.name).sort();
  const snapshotOf = (sessionId: number) => stack.knex('community_snapshots').where({ session_id: sessionId }).first();

  async function share(user: TestUser, sessionId: number): Promise<number> {
    const shared = await patch(stack.t, user, sessionId, { shareToCommunity: true });
    await waitFor('the snapshot to be ready', async () => (await snapshotOf(sessionId))?.status === 'ready');
    return (shared.communitySnapshot as { id: number }).id;
  }

  async function sessionOf(user: TestUser, sub: string, count: number, thumbnail: string): Promise<number> {
    const created = await createSession(stack.t, user, { title: `On ${sub}`, subreddits: sub, thumbnail });
    await waitFor('media synced', async () => (await stack.knex('session_media').where({ session_id: created.id })).length === count);
    return created.id;
  }

  it('two sessions with the same media: each stored once, referenced twice; the second share uploads 0 bytes; unshared, the collector deletes exactly those after the grace period', async () => {
    const user = await registerUser(stack.t);
    await serveImages(stack.fixture, 'samepics', 3);
    await stack.fixture.image('/media/same-thumb.jpg', { width: 320, height: 240, format: 'jpeg' });
    const thumb = stack.fixture.url('/media/same-thumb.jpg');
    const a = await sessionOf(user, 'samepics', 3, thumb);
    const b = await sessionOf(user, 'samepics', 3, thumb);
    // Another snapshot with other media: its blobs must survive the collection below.
    await serveImages(stack.fixture, 'otherpics', 2);
    const other = await sessionOf(user, 'otherpics', 2, stack.fixture.url('/media/same-thumb.jpg'));
    await share(user, other);

    proxy.reset();
    const snapA = await share(user, a);
    expect(proxy.uploaded(), 'the first share uploads the media').to.be.greaterThan(0);
    proxy.reset();
    const snapB = await share(user, b);
    expect(proxy.uploaded(), 'the second share moves no bytes').to.equal(0);

    const items = await stack.knex('community_snapshot_media').whereIn('snapshot_id', [snapA, snapB]);
    const hashes = [...new Set(items.map((r) => r.blob_sha256 as string))];
    expect(items).to.have.length(6);
    expect(hashes).to.have.length(3);
    for (const h of hashes) expect(items.filter((r) => r.blob_sha256 === h), `references of ${h}`).to.have.length(2);
    const snaps = await stack.knex('community_snapshots').whereIn('id', [snapA, snapB]);
    expect(new Set(snaps.map((s) => s.thumbnail_sha256)).size).to.equal(1);
    const ownHashes = [...hashes, snaps[0].thumbnail_sha256 as string];
    // One blob per distinct hash, no more: the whole media/sha256/ listing against durable_blobs.
    const all = await stack.knex('durable_blobs').select('sha256', 'blob_name');
    expect(await durableNames()).to.deep.equal(all.map((r) => r.blob_name).sort());
    for (const h of ownHashes) expect(all.filter((r) => r.sha256 === h)).to.have.length(1);
    for (const r of items) {
      const copy = Buffer.from(await (await fetch(stack.blobs.url(container(), r.blob_name))).arrayBuffer());
      expect(sha256(copy)).to.equal(r.blob_sha256);
    }

    await patch(stack.t, user, a, { shareToCommunity: false });
    await patch(stack.t, user, b, { shareToCommunity: false });
    const ownNames = all.filter((r) => ownHashes.includes(r.sha256) && r.sha256 !== snaps[0].thumbnail_sha256).map((r) => r.blob_name);
    const survivors = (await durableNames()).filter((n) => !ownNames.includes(n));

    // Within the grace period: marked, not deleted.
    await runMaintenanceTask(stack.deps, 'durable-blobs');
    const marked = await stack.knex('durable_blobs').whereIn('sha256', hashes);
    expect(marked.every((r) => r.unreferenced_since !== null)).to.equal(true);
    for (const n of ownNames) expect(await stack.blobs.exists(container(), n)).to.equal(true);

    // Past it (a collector whose grace is over; the marks are not moved back, since a blob written
    // after its mark is kept): every blob of those hashes goes; the others' (still referenced) stay.
    const { config } = stack.deps;
    await runMaintenanceTask({ ...stack.deps, config: { ...config, maintenance: { ...config.maintenance, mediaGcGraceMinutes: 0 } } }, 'durable-blobs');
    expect(await stack.knex('durable_blobs').whereIn('sha256', hashes)).to.deep.equal([]);
    expect(await durableNames()).to.deep.equal(survivors);
    const otherSnap = await snapshotOf(other);
    expect(await stack.blobs.exists(container(), otherSnap.thumbnail_blob_name)).to.equal(true);
  });

  it('a source that serves a strong ETag is asked again with If-None-Match (not at all while its max-age lasts): a 304 moves no byte either way; changed bytes are copied anew; weak tags are not used; a collected blob is copied again in full', async () => {
    const user = await registerUser(stack.t);
    // Media whose bytes the test can change, each served with an ETag; counts full answers and 304s.
    const media = new Map<string, { body: Buffer; etag: string }>();
    const served = { full: 0, notModified: 0, conditional: new Set<string>() };
    const serve = (path: string, body: Buffer, etag: string): void => {
      media.set(path, { body, etag });
      stack.fixture.route(path, (req, res) => {
        const now = media.get(path)!;
        if (req.headers['if-none-match'] !== undefined) served.conditional.add(path);
        if (req.headers['if-none-match'] === now.etag) {
          served.notModified += 1;
          return void res.writeHead(304, { etag: now.etag }).end();
        }
        served.full += 1;
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': now.body.length, etag: now.etag }).end(now.body);
      });
    };
    const paths = ['/media/tagged-0.jpg', '/media/tagged-1.jpg', '/media/tagged-2.jpg', '/media/weak-tag.jpg'];
    for (const [i, path] of paths.entries()) serve(path, await makeImage({ width: 300, height: 200, format: 'jpeg', seed: path }), i === 3 ? 'W/"weak"' : `"v1-${i}"`);
    stack.fixture.setListing(['taggedpics'], paths.map((path, i) => ({ id: `tagged${i}`, kind: 'image', path })));
    await stack.fixture.image('/media/tagged-thumb.jpg', { width: 320, height: 240, format: 'jpeg' });
    const thumb = stack.fixture.url('/media/tagged-thumb.jpg');
    const itemsOf = async (snapshotId: number) => stack.knex('community_snapshot_media').where({ snapshot_id: snapshotId }).orderBy('order');
    const shareCounted = async (): Promise<{ snapshotId: number; full: number; notModified: number; uploaded: number }> => {
      const sessionId = await sessionOf(user, 'taggedpics', paths.length, thumb);
      const before = { ...served };
      proxy.reset();
      const snapshotId = await share(user, sessionId);
      const items = await itemsOf(snapshotId);
      for (const r of items) {
        const copy = Buffer.from(await (await fetch(stack.blobs.url(container(), r.blob_name))).arrayBuffer());
        expect(copy.equals(media.get(new URL(r.source_url).pathname)!.body), `${r.source_url} copied as its source has it now`).to.equal(true);
      }
      return { snapshotId, full: served.full - before.full, notModified: served.notModified - before.notModified, uploaded: proxy.uploaded() };
    };

    const first = await shareCounted();
    expect(first).to.include({ full: 4, notModified: 0 });
    expect(first.uploaded).to.be.greaterThan(0);
    const remembered = await stack.knex('media_sources').whereIn('source_url', paths.map((p) => stack.fixture.url(p))).orderBy('source_url');
    expect(remembered.map((r) => r.etag), 'strong tags only').to.deep.equal(['"v1-0"', '"v1-1"', '"v1-2"']);

    // The same media in another session: three 304s and one full download (the weak tag), nothing uploaded.
    const second = await shareCounted();
    expect(second).to.include({ full: 1, notModified: 3, uploaded: 0 });
    expect(served.conditional.has('/media/weak-tag.jpg'), 'a weak tag is never sent').to.equal(false);
    expect((await itemsOf(second.snapshotId)).map((r) => r.blob_sha256)).to.deep.equal((await itemsOf(first.snapshotId)).map((r) => r.blob_sha256));

    // One source changes its bytes (and so its tag): that item is downloaded and stored under its new hash.
    const changed = await makeImage({ width: 300, height: 200, format: 'jpeg', seed: 'changed' });
    serve('/media/tagged-1.jpg', changed, '"v2-1"');
    const third = await shareCounted();
    expect(third).to.include({ full: 2, notModified: 2 });
    expect(third.uploaded).to.be.greaterThan(changed.length - 1);
    expect((await itemsOf(third.snapshotId))[1].blob_sha256).to.equal(sha256(changed));
    expect((await stack.knex('media_sources').where({ source_url: stack.fixture.url('/media/tagged-1.jpg') }).first()).etag).to.equal('"v2-1"');

    // Everything unshared and collected: what the sources served goes with the blobs, so the next
    // share downloads and uploads every item again rather than referencing bytes that are gone.
    for (const s of [first, second, third]) {
      const { session_id: sessionId } = await stack.knex('community_snapshots').where({ id: s.snapshotId }).first('session_id');
      await patch(stack.t, user, sessionId, { shareToCommunity: false });
    }
    const { config } = stack.deps;
    const collector = { ...stack.deps, config: { ...config, maintenance: { ...config.maintenance, mediaGcGraceMinutes: 0 } } };
    await runMaintenanceTask(collector, 'durable-blobs');
    await runMaintenanceTask(collector, 'durable-blobs');
    expect(await stack.knex('media_sources').whereIn('source_url', paths.map((p) => stack.fixture.url(p)))).to.deep.equal([]);
    const fourth = await shareCounted();
    expect(fourth).to.include({ full: 4, notModified: 0 });
    expect(fourth.uploaded).to.be.greaterThan(0);

    // A source that says its bytes stay current for an hour (Cache-Control max-age) is not asked at
    // all while that lasts; once it is over, it is asked again, and a 304 renews it.
    const freshPath = '/media/tagged-2.jpg';
    stack.fixture.route(freshPath, (req, res) => {
      const now = media.get(freshPath)!;
      const headers = { etag: now.etag, 'cache-control': 'public, max-age=3600' };
      if (req.headers['if-none-match'] === now.etag) return void res.writeHead(304, headers).end();
      res.writeHead(200, { ...headers, 'content-type': 'image/jpeg', 'content-length': now.body.length }).end(now.body);
    });
    const hitsOf = (): number => stack.fixture.hits(freshPath);
    const freshSource = () => stack.knex('media_sources').where({ source_url: stack.fixture.url(freshPath) }).first();
    await shareCounted();
    const renewed = await freshSource();
    expect(renewed.fresh_until.getTime() - Date.now()).to.be.within(3000_000, 3600_000);
    const asked = hitsOf();
    await shareCounted();
    expect(hitsOf(), 'not asked while fresh').to.equal(asked);
    await stack.knex('media_sources').where({ source_url: stack.fixture.url(freshPath) }).update({ fresh_until: stack.knex.raw(`now() - interval '1 second'`) });
    const stale = await shareCounted();
    expect(hitsOf(), 'asked again once stale').to.equal(asked + 1);
    expect(stale).to.include({ full: 1, uploaded: 0 });
    expect((await freshSource()).fresh_until.getTime()).to.be.greaterThan(Date.now() + 3000_000);
  });

  it('the collector keeps a blob written again after it was marked unreferenced (a copy that found its row gone): only its row goes', async () => {
    const body = Buffer.from('written again while collected');
    const hash = sha256(body);
    const name = durableBlobName(hash, 'image/jpeg');
    await stack.blobs.upload(container(), name, body, 'image/jpeg');
    // Marked an hour ago, but written (again) just now: the upload is newer than the mark.
    await stack.knex('durable_blobs').insert({ sha256: hash, blob_name: name, content_type: 'image/jpeg', bytes: body.length, unreferenced_since: stack.knex.raw(`now() - interval '1 hour'`) });
    const { config } = stack.deps;
    await runMaintenanceTask({ ...stack.deps, config: { ...config, maintenance: { ...config.maintenance, mediaGcGraceMinutes: 30 } } }, 'durable-blobs');
    expect(await stack.knex('durable_blobs').where({ sha256: hash })).to.deep.equal([]);
    expect(await stack.blobs.exists(container(), name)).to.equal(true);
  });

  it('copies of the same new bytes recording at once all succeed, with one row for them: a race on the unique blob name is a conflict, not an error', async () => {
    // Each copy found no row, so each uploaded the bytes and now records them. Before, a record that
    // lost the race on `blob_name` (unique too, and not the ON CONFLICT target) failed its job's attempt.
    const copies = 6;
    const rounds = 60;
    const user = await registerUser(stack.t);
    const sessions = await Promise.all(Array.from({ length: copies }, (_, i) => createSession(stack.t, user, { title: `Race ${i}`, subreddits: 'racing', isManualMode: true })));
    const snapshotIds = (await stack.knex.raw(
      `INSERT INTO community_snapshots (session_id, user_id, title, subreddits, category_id, interval_min, interval_max, transition, caption_theme, is_manual_mode, is_imported, status, media_count)
       SELECT id, user_id, title, subreddits, category_id, interval_min, interval_max, transition, caption_theme, is_manual_mode, is_imported, 'copying', ?
         FROM sessions WHERE id = ANY(?) RETURNING id`,
      [rounds, sessions.map((s) => s.id)],
    )).rows.map((r: { id: number }) => r.id);
    for (let round = 0; round < rounds; round++) {
      const body = Buffer.from(`the same bytes, round ${round}`);
      const hash = sha256(body);
      const blob = { sha256: hash, blobName: durableBlobName(hash, 'image/jpeg'), contentType: 'image/jpeg', bytes: body.length, uploaded: body.length };
      const items: number[] = (await stack.knex('community_snapshot_media')
        .insert(snapshotIds.map((snapshot_id: number) => ({ snapshot_id, source_url: `https://media.example.test/${round}.jpg`, type: 'image', order: round })))
        .returning('id')).map((r: { id: number }) => r.id);
      const url = stack.blobs.url(container(), blob.blobName);
      const outcomes = await Promise.allSettled([
        // Snapshot items (one statement each) and the two-statement form a snapshot's thumbnail uses, all at once.
        ...snapshotIds.map((snapshotId: number, i: number) =>
          recordSnapshotCopies(stack.knex, snapshotId, [{ itemId: items[i]!, ...blob, url, uploaded: true, blobContentType: blob.contentType, source: null }]),
        ),
        ...Array.from({ length: copies }, () => stack.knex.transaction((trx) => referenceDurableBlobs(trx, [blob]))),
      ]);
      expect(outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason)), `round ${round}`).to.deep.equal([]);
      expect(await stack.knex('durable_blobs').where({ sha256: hash }).count<{ count: string }[]>({ count: '*' }), `round ${round}`).to.deep.equal([{ count: 1 }]);
    }
  });

  it('media:migrate moves snapshots of the old layout: every URL answers with the same bytes; a second run does nothing; --dry-run changes nothing', async () => {
    const user = await registerUser(stack.t);
    await serveImages(stack.fixture, 'legacypics', 3);
    const sessionId = await sessionOf(user, 'legacypics', 3, stack.fixture.url('/media/same-thumb.jpg'));
    const session = await stack.knex('sessions').where({ id: sessionId }).first();
    const media = await stack.knex('session_media').where({ session_id: sessionId }).orderBy('order');
    // As the old code left it: ready, each copy under snapshots/<id>/, the thumbnail beside them.
    const [snap] = await stack.knex('community_snapshots')
      .insert({
        session_id: sessionId, user_id: user.user.id, title: 'Legacy', subreddits: ['legacypics'], category_id: session.category_id,
        interval_min: 3, interval_max: 10, transition: 'fade', caption_theme: 'joi', is_manual_mode: false, is_imported: false,
        status: 'ready', media_count: 3, copied_count: 3, ready_at: stack.knex.fn.now(),
      })
      .returning('id');
    const bodies = new Map<string, Buffer>();
    for (const m of media) {
      const body = Buffer.from(await (await fetch(m.media_url)).arrayBuffer());
      const name = `snapshots/${snap.id}/${m.order}-${m.id}.jpg`;
      const { url } = await stack.blobs.upload(container(), name, body, 'image/jpeg');
      bodies.set(sha256(body), body);
      await stack.knex('community_snapshot_media').insert({
        snapshot_id: snap.id, source_media_id: m.id, source_url: m.media_url, type: 'image', order: m.order,
        blob_name: name, blob_url: url, content_type: 'image/jpeg', bytes: body.length, checksum: sha256(body), copied_at: stack.knex.fn.now(),
      });
    }
    const thumbBody = Buffer.from(await (await fetch(stack.fixture.url('/media/same-thumb.jpg'))).arrayBuffer());
    const thumb = await stack.blobs.upload(container(), `snapshots/${snap.id}/thumbnail.jpg`, thumbBody, 'image/jpeg');
    await stack.knex('community_snapshots').where({ id: snap.id }).update({ thumbnail_blob_name: `snapshots/${snap.id}/thumbnail.jpg`, thumbnail_url: thumb.url });

    const rowsOf = async () => ({
      items: await stack.knex('community_snapshot_media').where({ snapshot_id: snap.id }).orderBy('order'),
      snapshot: await stack.knex('community_snapshots').where({ id: snap.id }).first(),
      legacy: (await stack.blobs.list(container(), `snapshots/${snap.id}/`)).map((b) => b.name),
    });
    const before = await rowsOf();
    const dry = await runScriptFile('media-migrate.ts', ['--dry-run'], stack.env);
    expect(dry.code, dry.stdout + dry.stderr).to.equal(0);
    expect(dry.stdout).to.match(new RegExp(`would move snapshot ${snap.id}: 3 item\\(s\\) and its thumbnail`));
    expect(await rowsOf()).to.deep.equal(before);

    const run = await runScriptFile('media-migrate.ts', [], stack.env);
    expect(run.code, run.stdout + run.stderr).to.equal(0);
    const after = await rowsOf();
    expect(after.legacy).to.deep.equal([]);
    expect(after.snapshot.thumbnail_sha256).to.equal(sha256(thumbBody));
    expect(after.items.every((r) => r.blob_sha256 === r.checksum && r.blob_name.startsWith('media/sha256/'))).to.equal(true);

    const feed = await stack.t.http().get('/api/community').set('Cookie', user.cookie).expect(200);
    expect(feed.body.items.map((i: { id: number }) => i.id)).to.include(snap.id);
    const detail = await stack.t.http().get(`/api/community/sessions/${snap.id}`).set('Cookie', user.cookie).expect(200);
    expect(detail.body.media).to.have.length(3);
    for (const m of detail.body.media as { mediaUrl: string; checksum: string }[]) {
      const res = await fetch(m.mediaUrl);
      expect(res.status, m.mediaUrl).to.equal(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(bodies.get(m.checksum)!)).to.equal(true);
    }
    const thumbRes = await fetch(after.snapshot.thumbnail_url);
    expect(thumbRes.status).to.equal(200);
    expect(sha256(Buffer.from(await thumbRes.arrayBuffer()))).to.equal(sha256(thumbBody));

    const again = await runScriptFile('media-migrate.ts', [], stack.env);
    expect(again.code, again.stdout + again.stderr).to.equal(0);
    expect(again.stdout).to.match(/nothing to do/);
    expect(await rowsOf()).to.deep.equal(after);
  });
});
