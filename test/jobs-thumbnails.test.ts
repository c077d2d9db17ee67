import { expect } from 'chai';
import sharp from 'sharp';
import { registerUser } from './helpers/app.js';
import { allDispatched, createSession, outboxFor, patch, serveImages } from './helpers/flows.js';
import { resolutionPath } from './helpers/fixture-server.js';
import type { JobStack } from './helpers/job-stack.js';
import { forEachStore } from './helpers/redis-kinds.js';
import { waitFor } from './helpers/wait.js';

forEachStore((redis) => describe(`jobs: media sync and thumbnails (worker process)${redis.suffix}`, function () {
  this.timeout(60_000);
  let stack: JobStack;

  before(async () => {
    stack = await redis.jobStack();
    await stack.startWorker();
  });
  after(async () => stack?.close());

  it('PATCH subreddits → media rows → a 640×360 WebP thumbnail in blob storage, served at the URL the API returns', async () => {
    const user = await registerUser(stack.t);
    await serveImages(stack.fixture, 'first', 2);
    const posts = await serveImages(stack.fixture, 'landscapes', 3, { width: 1920, height: 1080 });
    const created = await createSession(stack.t, user, { title: 'Thumbs', subreddits: 'first' });
    await waitFor('the first thumbnail', async () => (await stack.knex('sessions').where({ id: created.id }).first()).thumbnail);

    await patch(stack.t, user, created.id, { subreddits: 'r/Landscapes' });
    const media = await waitFor('media of the new subreddit', async () => {
      const rows = await stack.knex('session_media').where({ session_id: created.id }).orderBy('order');
      return rows.length === 3 && rows.every((r) => r.subreddit === 'landscapes') ? rows : undefined;
    });
    expect(media.map((m) => m.reddit_post_id)).to.deep.equal(posts.map((p) => p.id));
    expect(media[0]).to.include({ type: 'image', order: 0 });

    const session = await waitFor('the regenerated thumbnail', async () => {
      const res = await stack.t.http().get(`/api/sessions/${created.id}`).set('Cookie', user.cookie).expect(200);
      const url = res.body.session.thumbnail as string | null;
      return url && url.includes(`/thumbnails/sessions/${created.id}/2.webp`) ? res.body.session : undefined;
    });
    const served = await fetch(session.thumbnail);
    expect(served.status).to.equal(200);
    const bytes = Buffer.from(await served.arrayBuffer());
    const meta = await sharp(bytes).metadata();
    expect(meta).to.include({ format: 'webp', width: 640, height: 360 });
    // The first generation's blob was replaced, not kept beside it.
    const blobs = await stack.blobs.list(stack.config.blobContainers.thumbnails, `thumbnails/sessions/${created.id}/`);
    expect(blobs.map((b) => b.name)).to.deep.equal([`thumbnails/sessions/${created.id}/2.webp`]);
  });

  it("a media sync's completion record commits in the same transaction as the media it wrote", async () => {
    const user = await registerUser(stack.t);
    await serveImages(stack.fixture, 'recorded', 2);
    // A custom thumbnail: no thumbnail job, so the media job's sync is the only write of the media.
    const created = await createSession(stack.t, user, { title: 'Recorded', subreddits: 'recorded', thumbnail: 'https://images.example.test/t.png' });
    const [row] = (await outboxFor(stack.knex, created.id)).filter((r) => r.queue === 'media');
    const finished = await waitFor('the media sync recorded finished', async () => {
      const r = await stack.knex('job_outbox').where({ id: row!.id }).first('final_state', stack.knex.raw('xmin::text AS xmin'));
      return r?.final_state ? r : undefined;
    });
    expect(finished.final_state).to.equal('completed');
    const media = await stack.knex('session_media').where({ session_id: created.id }).select(stack.knex.raw('xmin::text AS xmin'));
    expect(media).to.have.length(2);
    // One transaction id: the media and the record commit together (one WAL flush, not two).
    expect(media.map((m) => m.xmin)).to.deep.equal([finished.xmin, finished.xmin]);
  });

  it("asks the listing host once per subreddits change, though the change's media job and thumbnail job both need its media", async () => {
    const user = await registerUser(stack.t);
    await serveImages(stack.fixture, 'oncefirst', 2);
    await serveImages(stack.fixture, 'oncesecond', 2);
    const created = await createSession(stack.t, user, { title: 'Once', subreddits: 'oncefirst' });
    const finished = (n: number) => async () => {
      const rows = await stack.knex('job_outbox').whereRaw(`(payload->>'sessionId')::int = ?`, [created.id]).select('final_state');
      return rows.length === n && rows.every((r) => r.final_state === 'completed');
    };
    await waitFor("the creation's media and thumbnail jobs completed", finished(2));
    await patch(stack.t, user, created.id, { subreddits: 'oncesecond' });
    await waitFor("the change's media and thumbnail jobs completed", finished(4));
    expect(stack.fixture.hits('/r/oncefirst/hot.json'), 'listing of the first subreddits').to.equal(1);
    expect(stack.fixture.hits('/r/oncesecond/hot.json'), 'listing of the second subreddits').to.equal(1);
    const media = await stack.knex('session_media').where({ session_id: created.id }).orderBy('order');
    expect(media.map((m) => m.subreddit)).to.deep.equal(['oncesecond', 'oncesecond']);
  });

  it('a thumbnail cleared with `thumbnail: ""` is regenerated, and the cleared blob is deleted', async () => {
    const user = await registerUser(stack.t);
    await serveImages(stack.fixture, 'cleared', 1);
    const created = await createSession(stack.t, user, { title: 'Cleared', subreddits: 'cleared' });
    const first = await waitFor('the first thumbnail', async () => (await stack.knex('sessions').where({ id: created.id }).first()).thumbnail as string | null);
    const cleared = await patch(stack.t, user, created.id, { thumbnail: '' });
    expect(cleared.thumbnail).to.equal(null);
    const second = await waitFor('the regenerated thumbnail', async () => {
      const url = (await stack.knex('sessions').where({ id: created.id }).first()).thumbnail as string | null;
      return url && url !== first ? url : undefined;
    });
    expect((await fetch(second)).status).to.equal(200);
    expect((await fetch(first)).status, 'the cleared thumbnail is gone from storage').to.equal(404);
    const blobs = await stack.blobs.list(stack.config.blobContainers.thumbnails, `thumbnails/sessions/${created.id}/`);
    expect(blobs).to.have.length(1);
  });

  it('a session of videos only gets its thumbnail from the first video\'s still', async () => {
    const user = await registerUser(stack.t);
    const posts = [
      { id: `vid0${Math.random().toString(36).slice(2, 7)}`, kind: 'video' as const },
      { id: `vid1${Math.random().toString(36).slice(2, 7)}`, kind: 'video' as const },
    ];
    stack.fixture.setListing(['onlyvideos'], posts);
    const created = await createSession(stack.t, user, { title: 'Videos', subreddits: 'onlyvideos' });
    const url = await waitFor('the thumbnail', async () => (await stack.knex('sessions').where({ id: created.id }).first()).thumbnail as string | null);
    expect(stack.fixture.hits(`/preview/${posts[0]!.id}.jpg`), 'the first video\'s still was the source').to.equal(1);
    expect(stack.fixture.hits(`/preview/${posts[1]!.id}.jpg`)).to.equal(0);
    expect(await sharp(Buffer.from(await (await fetch(url)).arrayBuffer())).metadata()).to.include({ format: 'webp', width: 640, height: 360 });
  });

  it('a custom thumbnail set after `thumbnail: ""` but before the job runs stays', async () => {
    // This app writes outbox rows but does not dispatch them: the jobs wait until we say so.
    const held = await redis.jobStack({ fastPath: false });
    try {
      const user = await registerUser(held.t);
      await serveImages(held.fixture, 'stale', 1);
      const created = await createSession(held.t, user, { title: 'Custom wins', subreddits: 'stale', thumbnail: 'https://cdn.example.test/a.jpg' });
      await patch(held.t, user, created.id, { thumbnail: '' });
      await patch(held.t, user, created.id, { thumbnail: 'https://cdn.example.test/mine.png' });
      const thumbRow = (await outboxFor(held.knex, created.id)).find((r) => r.queue === 'thumbnails');
      expect(thumbRow, 'the "" PATCH wrote a thumbnail job').to.exist;
      // Now let a worker (and its relay) run everything that is pending.
      await held.startWorker();
      const job = await waitFor('the thumbnail job to finish', async () => {
        const j = await held.job('thumbnails', thumbRow!.id);
        return j && (j.state === 'completed' || j.state === 'failed') ? j : undefined;
      });
      expect(job.state).to.equal('completed');
      expect(job.returnvalue).to.deep.include({ status: 'skipped', reason: 'custom' });
      const res = await held.t.http().get(`/api/sessions/${created.id}`).set('Cookie', user.cookie).expect(200);
      expect(res.body.session.thumbnail).to.equal('https://cdn.example.test/mine.png');
      expect(await held.blobs.list(held.config.blobContainers.thumbnails, `thumbnails/sessions/${created.id}/`)).to.deep.equal([]);
    } finally {
      await held.close();
    }
  });

  it('retries a media source that answers 503 once, then succeeds', async () => {
    const user = await registerUser(stack.t);
    let calls = 0;
    const image = await stack.fixture.image('/media/flaky-src.jpg', { width: 700, height: 500, format: 'jpeg' });
    stack.fixture.route('/media/flaky.jpg', (_req, res) => {
      calls += 1;
      if (calls === 1) {
        res.writeHead(503).end('try later');
        return;
      }
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': image.length }).end(image);
    });
    stack.fixture.setListing(['flaky'], [{ id: 'flaky1', kind: 'image', path: '/media/flaky.jpg' }]);
    const created = await createSession(stack.t, user, { title: 'Flaky', subreddits: 'flaky' });
    const row = (await outboxFor(stack.knex, created.id)).find((r) => r.queue === 'thumbnails')!;
    const job = await waitFor('the thumbnail job to complete after a retry', async () => {
      const j = await stack.job('thumbnails', row.id);
      return j?.state === 'completed' ? j : undefined;
    });
    expect(job.attemptsMade).to.equal(2);
    expect(calls).to.equal(2);
    expect((await stack.knex('sessions').where({ id: created.id }).first()).thumbnail).to.match(/\.webp$/);
  });

  describe('sources that cannot work fail at once with a clear reason, and the worker keeps going', () => {
    const cases: { name: string; reason: RegExp; setup: (s: JobStack) => Promise<string> }[] = [
      {
        name: 'a media URL answering 404',
        reason: /404/,
        setup: async (s) => {
          s.fixture.route('/media/gone.jpg', (_req, res) => void res.writeHead(404).end('nope'));
          return '/media/gone.jpg';
        },
      },
      {
        name: 'a corrupt image',
        reason: /thumbnail/i,
        setup: async (s) => {
          s.fixture.route('/media/corrupt.jpg', (_req, res) =>
            void res.writeHead(200, { 'content-type': 'image/jpeg' }).end(Buffer.from('\xff\xd8\xff\xe0 this is not really a jpeg', 'binary')),
          );
          return '/media/corrupt.jpg';
        },
      },
      {
        name: 'a body over MEDIA_MAX_BYTES',
        reason: /MEDIA_MAX_BYTES|too large|exceeds/i,
        setup: async (s) => {
          await s.fixture.image('/media/huge.png', { width: 1500, height: 1500, format: 'png', bytes: s.config.mediaMaxBytes + 200_000 });
          return '/media/huge.png';
        },
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const user = await registerUser(stack.t);
        const path = await c.setup(stack);
        const sub = `bad${Math.random().toString(36).slice(2, 8)}`;
        stack.fixture.setListing([sub], [{ id: `${sub}p`, kind: 'image', path }]);
        const created = await createSession(stack.t, user, { title: c.name, subreddits: sub });
        const row = (await outboxFor(stack.knex, created.id)).find((r) => r.queue === 'thumbnails')!;
        const job = await waitFor('the thumbnail job to fail', async () => {
          const j = await stack.job('thumbnails', row.id);
          return j?.state === 'failed' ? j : undefined;
        });
        expect(job.failedReason).to.match(c.reason);
        expect(job.attemptsMade, 'no retry for a failure a retry cannot fix').to.equal(1);
        // The worker still serves other jobs.
        await serveImages(stack.fixture, `${sub}ok`, 1);
        const ok = await createSession(stack.t, user, { title: 'after', subreddits: `${sub}ok` });
        await waitFor('a later thumbnail', async () => (await stack.knex('sessions').where({ id: ok.id }).first()).thumbnail);
      });
    }

    it('a media URL on a private address while MEDIA_ALLOW_PRIVATE_HOSTS is off', async () => {
      const strict = await redis.jobStack({ env: { MEDIA_ALLOW_PRIVATE_HOSTS: 'false' } });
      try {
        await strict.startWorker();
        const user = await registerUser(strict.t);
        // A manual-mode session keeps its own media, so no listing is fetched: only the media URL matters.
        const created = await createSession(strict.t, user, { title: 'Private', subreddits: 'whatever', isManualMode: true });
        await strict.knex('session_media').insert({ session_id: created.id, media_url: strict.fixture.url('/media/x.jpg'), type: 'image', order: 0 });
        await patch(strict.t, user, created.id, { thumbnail: '' });
        const rows = (await outboxFor(strict.knex, created.id)).filter((r) => r.queue === 'thumbnails');
        const job = await waitFor('the thumbnail job to fail', async () => {
          const j = await strict.job('thumbnails', rows[rows.length - 1]!.id);
          return j?.state === 'failed' ? j : undefined;
        });
        expect(job.failedReason).to.match(/private|loopback/i);
        expect(job.attemptsMade).to.equal(1);
        expect(strict.fixture.hits('/media/x.jpg')).to.equal(0);
      } finally {
        await strict.close();
      }
    });
  });

  it('dispatches every outbox row it writes', async () => {
    const user = await registerUser(stack.t);
    await serveImages(stack.fixture, 'dispatched', 1);
    const created = await createSession(stack.t, user, { title: 'All out', subreddits: 'dispatched' });
    await waitFor('all rows dispatched', () => allDispatched(stack.knex, created.id));
  });

  describe('the source a thumbnail is rendered from', () => {
    // Reddit's renditions of a 1920×1080 image.
    const REDDIT_WIDTHS = [
      { width: 108, height: 60 },
      { width: 216, height: 121 },
      { width: 320, height: 180 },
      { width: 640, height: 360 },
      { width: 960, height: 540 },
      { width: 1080, height: 607 },
    ];

    /** A session synced from one 1920×1080 image post with `previews`; returns the post's id and source path once the thumbnail is written. */
    async function thumbnailFrom(subreddit: string, previews: { width: number; height: number }[]): Promise<{ id: string; source: string; thumbnail: string }> {
      const user = await registerUser(stack.t);
      const id = `${subreddit}${Math.random().toString(36).slice(2, 7)}`;
      const source = `/media/${id}.jpg`;
      await stack.fixture.image(source, { width: 1920, height: 1080, format: 'jpeg' });
      stack.fixture.setListing([subreddit], [{ id, kind: 'image', path: source, previews }]);
      const created = await createSession(stack.t, user, { title: 'Previews', subreddits: subreddit });
      const thumbnail = await waitFor('the thumbnail', async () => (await stack.knex('sessions').where({ id: created.id }).first()).thumbnail as string | null);
      return { id, source, thumbnail };
    }

    it('is the smallest listing preview that covers 640×360, and the sync keeps every preview with the source size', async () => {
      const { id, source, thumbnail } = await thumbnailFrom('previewed', REDDIT_WIDTHS);
      const served = REDDIT_WIDTHS.filter((size) => stack.fixture.hits(resolutionPath(id, size)) > 0);
      expect(served, 'only the 640×360 preview was downloaded').to.deep.equal([{ width: 640, height: 360 }]);
      expect(stack.fixture.hits(source), 'the full-size source was not downloaded').to.equal(0);
      // The listing's `&amp;` was unescaped: the media host saw the query Reddit's CDN would.
      expect(stack.fixture.lastRequest(resolutionPath(id, { width: 640, height: 360 }))?.url).to.match(/\?width=640&crop=smart&s=fixture$/);
      expect(await sharp(Buffer.from(await (await fetch(thumbnail)).arrayBuffer())).metadata()).to.include({ format: 'webp', width: 640, height: 360 });

      const [media] = await stack.knex('session_media').where({ reddit_post_id: id });
      expect(media.previews.source).to.deep.equal({ width: 1920, height: 1080 });
      expect(media.previews.resolutions.map((r: { width: number; height: number }) => ({ width: r.width, height: r.height }))).to.deep.equal(REDDIT_WIDTHS);
    });

    it('is the source when no preview covers 640×360', async () => {
      const small = REDDIT_WIDTHS.filter((size) => size.width < 640);
      const { id, source } = await thumbnailFrom('unpreviewed', small);
      expect(stack.fixture.hits(source), 'the source was downloaded').to.equal(1);
      expect(small.map((size) => stack.fixture.hits(resolutionPath(id, size)))).to.deep.equal([0, 0, 0]);
    });
  });
}));
