import { createHash } from 'node:crypto';
import { expect } from 'chai';
import type supertest from 'supertest';
import { registerUser, type TestUser } from './helpers/app.js';
import { createSession, patch, serveImages } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { holdRowLock } from './helpers/row-lock.js';
import { waitFor } from './helpers/wait.js';
import { collectDurableBlobs } from '../workers/processors/durable-blobs.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Saved {
  success: boolean;
  sessionId: number;
  reused: boolean;
}

describe('save to library: POST /api/community/sessions/:id/save (worker process, Azurite)', function () {
  this.timeout(240_000);
  let stack: JobStack;

  before(async () => {
    // The collector deletes what nothing references at once: a save that left a blob unreferenced would show.
    stack = await startJobStack({ env: { MEDIA_GC_GRACE_MINUTES: '0' } });
    await stack.startWorker();
  });
  after(async () => stack?.close());

  const save = (who: TestUser, snapshotId: number) => stack.t.http().post(`/api/community/sessions/${snapshotId}/save`).set('Cookie', who.cookie);
  const snapshotOf = (sessionId: number) => stack.knex('community_snapshots').where({ session_id: sessionId }).first();
  const collect = () => collectDurableBlobs(stack.deps, 100_000);

  /** A session of `count` fresh images, shared to the community; returns it and its ready snapshot's id. */
  async function sharedItem(
    user: TestUser,
    sub: string,
    count: number,
    extra: Record<string, unknown> = {},
    atShare: Record<string, unknown> = {},
  ): Promise<{ sessionId: number; snapshotId: number }> {
    await serveImages(stack.fixture, sub, count);
    const created = await createSession(stack.t, user, { title: `Item ${sub}`, subreddits: sub, ...extra });
    await waitFor('media synced', async () => (await stack.knex('session_media').where({ session_id: created.id })).length === count, { timeoutMs: 60_000 });
    const shared = await patch(stack.t, user, created.id, { shareToCommunity: true, ...atShare });
    const snapshotId = (shared.communitySnapshot as { id: number }).id;
    await waitFor('the snapshot to be ready', async () => (await snapshotOf(created.id))?.status === 'ready', { timeoutMs: 60_000 });
    return { sessionId: created.id, snapshotId };
  }

  /** Each media URL of the session answers 200 with bytes whose hash is its blob's. */
  async function expectMediaServed(viewer: TestUser, sessionId: number): Promise<string[]> {
    const { body } = await stack.t.http().get(`/api/sessions/${sessionId}`).set('Cookie', viewer.cookie).expect(200);
    const rows = (await stack.knex('session_media').where({ session_id: sessionId }).orderBy('order').select('media_url', 'blob_sha256')) as { media_url: string; blob_sha256: string }[];
    expect(body.media.map((m: { mediaUrl: string }) => m.mediaUrl)).to.deep.equal(rows.map((r) => r.media_url));
    for (const r of rows) {
      const res = await fetch(r.media_url);
      expect(res.status, r.media_url).to.equal(200);
      expect(sha256(Buffer.from(await res.arrayBuffer())), r.media_url).to.equal(r.blob_sha256);
    }
    return rows.map((r) => r.blob_sha256);
  }

  it('the copy: same title, settings, subreddits, category, media and captions in order, durable thumbnail; private, imported from community:<id>; no jobs', async () => {
    const creator = await registerUser(stack.t, { firstName: 'Creator' });
    const saver = await registerUser(stack.t);
    const category = (await stack.knex('categories').where({ is_default: false }).first('id')) as { id: number } | undefined;
    const { sessionId, snapshotId } = await sharedItem(creator, 'savecopy', 3, {
      intervalMin: 4,
      intervalMax: 12,
      transition: 'zoom',
      captionTheme: 'beta',
      aiPrompt: 'a prompt',
      ...(category ? { categoryId: category.id } : {}),
    }, { isManualMode: true }); // set once synced: a manual session's media are not synced
    await stack.knex('community_snapshot_media').where({ snapshot_id: snapshotId, order: 1 }).update({ caption: 'the second' });
    const snapshot = await snapshotOf(sessionId);

    const outboxBefore = ((await stack.knex('job_outbox').max('id as id').first()) as { id: number }).id;
    const res = await save(saver, snapshotId).expect(200);
    const saved = res.body as Saved;
    expect(saved).to.deep.equal({ success: true, sessionId: saved.sessionId, reused: false });
    expect(((await stack.knex('job_outbox').max('id as id').first()) as { id: number }).id, 'no job for a save').to.equal(outboxBefore);

    const { body } = await stack.t.http().get(`/api/sessions/${saved.sessionId}`).set('Cookie', saver.cookie).expect(200);
    expect(body.session).to.deep.include({
      userId: saver.user.id,
      title: 'Item savecopy',
      subreddits: ['savecopy'],
      categoryId: snapshot.category_id,
      categorySource: category ? 'manual' : 'default',
      intervalMin: 4,
      intervalMax: 12,
      transition: 'zoom',
      captionTheme: 'beta',
      aiPrompt: 'a prompt',
      isManualMode: true,
      isImported: false,
      importSource: 'community',
      isPublic: false,
      shareToCommunity: false,
      isFavorite: false,
      thumbnail: snapshot.thumbnail_url,
      communitySnapshot: null,
    });
    const { body: original } = await stack.t.http().get(`/api/community/sessions/${snapshotId}`).set('Cookie', saver.cookie).expect(200);
    expect(body.media.map((m: { mediaUrl: string; caption: string | null; order: number }) => [m.mediaUrl, m.caption, m.order])).to.deep.equal(
      original.media.map((m: { mediaUrl: string; caption: string | null; order: number }) => [m.mediaUrl, m.caption, m.order]),
    );
    const row = await stack.knex('sessions').where({ id: saved.sessionId }).first();
    expect(row).to.deep.include({ import_url: `community:${snapshotId}`, thumbnail_source: 'custom', thumbnail_sha256: snapshot.thumbnail_sha256, media_subreddits: ['savecopy'] });
    expect(row.thumbnail_sha256).to.be.a('string');
    await expectMediaServed(saver, saved.sessionId);
  });

  it('three users save one item: storage holds each media item once, every copy references it; after unshare, the original session deleted and its creator gone, every copy still serves its media', async () => {
    const creator = await registerUser(stack.t);
    const savers = [await registerUser(stack.t), await registerUser(stack.t), await registerUser(stack.t)];
    const { sessionId, snapshotId } = await sharedItem(creator, 'threesave', 3);
    const blobCount = async () => (await stack.blobs.list(stack.config.blobContainers.snapshots, 'media/sha256/')).length;
    const before = { blobs: await blobCount(), rows: Number(((await stack.knex('durable_blobs').count({ n: '*' }).first()) as { n: string }).n) };

    const copies = (await Promise.all(savers.map(async (s) => ((await save(s, snapshotId).expect(200)).body as Saved).sessionId))) as number[];
    expect(new Set(copies).size).to.equal(3);
    // No bytes moved: the same blobs and rows as before the saves.
    expect(await blobCount()).to.equal(before.blobs);
    expect(Number(((await stack.knex('durable_blobs').count({ n: '*' }).first()) as { n: string }).n)).to.equal(before.rows);
    const hashes = (await stack.knex('community_snapshot_media').where({ snapshot_id: snapshotId }).pluck('blob_sha256')) as string[];
    expect(new Set(hashes).size).to.equal(3);
    for (const hash of hashes) {
      expect(await stack.knex('durable_blobs').where({ sha256: hash }).count<{ n: number }[]>({ n: '*' }), 'one blob per hash').to.deep.equal([{ n: 1 }]);
      const references = await stack.knex('session_media').where({ blob_sha256: hash }).whereIn('session_id', copies).count<{ n: number }[]>({ n: '*' });
      expect(references, 'a reference from each copy').to.deep.equal([{ n: 3 }]);
    }

    await patch(stack.t, creator, sessionId, { shareToCommunity: false });
    await waitFor('the snapshot purge to drop its references', async () => (await stack.knex('community_snapshot_media').where({ snapshot_id: snapshotId })).length === 0);
    await stack.t.http().delete(`/api/sessions/${sessionId}`).set('Cookie', creator.cookie).expect(204);
    await stack.knex('users').where({ id: creator.user.id }).del();
    await collect();
    await collect();
    for (const [i, copy] of copies.entries()) {
      expect(await expectMediaServed(savers[i]!, copy)).to.deep.equal(hashes);
      const { thumbnail } = (await stack.knex('sessions').where({ id: copy }).first('thumbnail')) as { thumbnail: string };
      expect((await fetch(thumbnail)).status, 'the saved thumbnail').to.equal(200);
    }
  });

  it('20 concurrent saves of one item by one user give one session; 19 answers say reused', async () => {
    const creator = await registerUser(stack.t);
    const saver = await registerUser(stack.t);
    const { snapshotId } = await sharedItem(creator, 'concsave', 2);
    const answers = await Promise.all(Array.from({ length: 20 }, () => save(saver, snapshotId)));
    expect(answers.map((a) => a.status)).to.deep.equal(Array(20).fill(200));
    const bodies = answers.map((a) => a.body as Saved);
    expect(new Set(bodies.map((b) => b.sessionId)).size).to.equal(1);
    expect(bodies.filter((b) => b.reused)).to.have.length(19);
    expect(await stack.knex('sessions').where({ user_id: saver.user.id }).count<{ n: number }[]>({ n: '*' })).to.deep.equal([{ n: 1 }]);
    expect(await stack.knex('session_media').where({ session_id: bodies[0]!.sessionId }).count<{ n: number }[]>({ n: '*' })).to.deep.equal([{ n: 2 }]);
    // And again later: the same session.
    expect((await save(saver, snapshotId).expect(200)).body).to.deep.equal({ success: true, sessionId: bodies[0]!.sessionId, reused: true });
  });

  /**
   * One save and one unshare of the same item, both in flight at once, the test choosing which
   * reaches the snapshot first: it holds the snapshot's row lock, sends one request and waits until
   * it queues on that lock, sends the other and waits until it queues too, then lets go. PostgreSQL
   * then serves them in the order they queued. Returns the save's answer.
   */
  async function race(snapshotId: number, sessionId: number, saver: TestUser, creator: TestUser, saveFirst: boolean): Promise<supertest.Response> {
    const lock = await holdRowLock(stack.knex, 'community_snapshots', snapshotId);
    try {
      // supertest sends a request once it is awaited (then), not when it is built.
      const saving = () => save(saver, snapshotId).then((r) => r);
      const unsharing = () => stack.t.http().patch(`/api/sessions/${sessionId}`).set('Cookie', creator.cookie).send({ shareToCommunity: false }).then((r) => r);
      const first = saveFirst ? saving() : unsharing();
      await waitFor('the first request to queue on the snapshot', async () => (await lock.queued()) === 1, { intervalMs: 5 });
      const second = saveFirst ? unsharing() : saving();
      await waitFor('the second request to queue behind it', async () => (await lock.queued()) === 2, { intervalMs: 5 });
      await lock.release();
      const [saved, unshared] = saveFirst ? [await first, await second] : [await second, await first];
      expect(unshared.status, unshared.text).to.equal(200);
      return saved;
    } finally {
      await lock.release();
    }
  }

  it('save raced with unshare of the same item, 20 times: a save that reaches it first is a copy, one that comes second is a 404; no copy ever has a media URL that fails', async () => {
    const creator = await registerUser(stack.t);
    const saver = await registerUser(stack.t);
    const rounds = 20;
    // Fresh bytes each round, so no round's blobs are kept alive by another round's copy.
    const items = await Promise.all(Array.from({ length: rounds }, (_, i) => sharedItem(creator, `race${i}`, 1)));
    const copies: number[] = [];
    for (const [i, { sessionId, snapshotId }] of items.entries()) {
      const saveFirst = i % 2 === 0;
      const saved = await race(snapshotId, sessionId, saver, creator, saveFirst);
      if (saveFirst) {
        expect(saved.status, `round ${i}, the save first: ${saved.text}`).to.equal(200);
        expect(saved.body).to.deep.include({ success: true, reused: false });
        copies.push((saved.body as Saved).sessionId);
      } else {
        expect(saved.status, `round ${i}, the save second: ${saved.text}`).to.equal(404);
        expect(saved.body.code).to.equal('NOT_FOUND');
      }
    }
    expect(copies).to.have.length(rounds / 2);
    const snapshotIds = items.map((i) => i.snapshotId);
    await waitFor('every purge to drop its references', async () => (await stack.knex('community_snapshot_media').whereIn('snapshot_id', snapshotIds)).length === 0, { timeoutMs: 60_000 });
    await collect();
    await collect();
    for (const copy of copies) await expectMediaServed(saver, copy);
    // Every session the saver has is one of the copies, each with its one item: a save that lost left nothing.
    expect((await stack.knex('sessions').where({ user_id: saver.user.id }).pluck('id')).sort()).to.deep.equal([...copies].sort());
    for (const copy of copies) expect(await stack.knex('session_media').where({ session_id: copy }).count<{ n: number }[]>({ n: '*' })).to.deep.equal([{ n: 1 }]);
  });

  it('a saved session is an ordinary session: PATCHable, with the imported locks when the item was imported', async () => {
    const creator = await registerUser(stack.t);
    const saver = await registerUser(stack.t);
    const { sessionId, snapshotId } = await sharedItem(creator, 'patchsave', 1);
    const { sessionId: copy } = (await save(saver, snapshotId).expect(200)).body as Saved;
    const patched = await patch(stack.t, saver, copy, { title: 'Mine now', isFavorite: true, intervalMax: 20 });
    expect(patched).to.deep.include({ title: 'Mine now', isFavorite: true, intervalMax: 20, importSource: 'community' });
    // Someone else's copy is private.
    await stack.t.http().get(`/api/sessions/${copy}`).set('Cookie', creator.cookie).expect(404);

    // An imported original: its copy is imported too, and locked as such.
    await patch(stack.t, creator, sessionId, { shareToCommunity: false });
    await stack.knex('sessions').where({ id: sessionId }).update({ is_imported: true, import_source: 'reference' });
    await patch(stack.t, creator, sessionId, { shareToCommunity: true });
    await waitFor('the snapshot to be ready', async () => (await snapshotOf(sessionId))?.status === 'ready');
    const again = (await snapshotOf(sessionId)) as { id: number };
    const { sessionId: importedCopy } = (await save(saver, again.id).expect(200)).body as Saved;
    const { body } = await stack.t.http().get(`/api/sessions/${importedCopy}`).set('Cookie', saver.cookie).expect(200);
    expect(body.session).to.deep.include({ isImported: true, importSource: 'community' });
    await patch(stack.t, saver, importedCopy, { aiPrompt: 'changed' }, 400);
    await patch(stack.t, saver, importedCopy, { title: 'Renamed import' });
  });

  it('404 for an item that is not ready, hidden, or gone; 400 for a bad id; 401 anonymous', async () => {
    const creator = await registerUser(stack.t);
    const saver = await registerUser(stack.t);
    const { sessionId, snapshotId } = await sharedItem(creator, 'gonesave', 1);
    await stack.knex('community_snapshots').where({ id: snapshotId }).update({ status: 'copying' });
    expect((await save(saver, snapshotId).expect(404)).body.code).to.equal('NOT_FOUND');
    await stack.knex('community_snapshots').where({ id: snapshotId }).update({ status: 'ready', is_hidden: true });
    await save(saver, snapshotId).expect(404);
    await stack.knex('community_snapshots').where({ id: snapshotId }).update({ is_hidden: false });
    await stack.t.http().post(`/api/community/sessions/${snapshotId}/save`).expect(401);
    await patch(stack.t, creator, sessionId, { shareToCommunity: false });
    await save(saver, snapshotId).expect(404);
    await save(saver, 2147483646).expect(404);
    await save(saver, 0).expect(400);
    expect(await stack.knex('sessions').where({ user_id: saver.user.id }).count<{ n: number }[]>({ n: '*' })).to.deep.equal([{ n: 0 }]);
  });
});
