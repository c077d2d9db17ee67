import { Ajv } from 'ajv';
import { expect } from 'chai';
import { createTestApp, registerUser } from './helpers/app.js';
import { categories, Client, expectEnvelope, failingPointers, jobsAfter, maxOutboxId, sessionRow, type Body } from './helpers/session-state.js';

/** The session object of docs/api.md §3, every key. */
const SESSION_KEYS = [
  'id',
  'title',
  'userId',
  'subreddits',
  'categoryId',
  'categorySource',
  'intervalMin',
  'intervalMax',
  'transition',
  'thumbnail',
  'aiPrompt',
  'captionTheme',
  'isPublic',
  'shareToCommunity',
  'isFavorite',
  'isManualMode',
  'isImported',
  'importSource',
  'createdAt',
  'updatedAt',
  'communitySnapshot',
];

const EDITABLE = ['title', 'subreddits', 'categoryId', 'intervalMin', 'intervalMax', 'transition', 'aiPrompt', 'captionTheme', 'thumbnail', 'isPublic', 'shareToCommunity', 'isFavorite', 'isManualMode'];

const ids = (body: unknown): number[] => (body as { id: number }[]).map((s) => s.id);

describe('sessions API: create, list, read, delete; categories; OpenAPI', () => {
  const t = createTestApp();
  let owner: Client;
  let stranger: Client;

  before(async () => {
    owner = new Client(t, await registerUser(t));
    stranger = new Client(t, await registerUser(t));
  });

  const countOwn = async (c: Client): Promise<number> => Number((await t.knex('sessions').where({ user_id: c.user.user.id }).count<{ n: number }[]>({ n: '*' }))[0]!.n);

  describe('POST /api/sessions', () => {
    it('201 with the reference defaults, Location and ETag; queues a media sync and a thumbnail', async () => {
      const cats = await categories(t);
      const mark = await maxOutboxId(t.knex);
      const res = await t.http().post('/api/sessions').set('Cookie', owner.user.cookie).set('Content-Type', 'application/json').send('{"title": "Fresh", "subreddits": "Pics, r/aww"}');
      expect(res.status, res.text).to.equal(201);
      const body = res.body as Body & { id: number };
      expect(Object.keys(body).sort()).to.deep.equal([...SESSION_KEYS].sort());
      expect(body).to.deep.include({
        title: 'Fresh',
        userId: owner.user.user.id,
        subreddits: ['pics', 'aww'],
        categoryId: cats.byDefault.id,
        categorySource: 'default',
        intervalMin: 3,
        intervalMax: 10,
        transition: 'fade',
        thumbnail: null,
        aiPrompt: null,
        captionTheme: 'joi',
        isPublic: false,
        shareToCommunity: false,
        isFavorite: false,
        isManualMode: false,
        isImported: false,
        importSource: null,
        communitySnapshot: null,
      });
      expect(body.id).to.be.a('number');
      expect(Date.parse(body.createdAt as string)).to.be.closeTo(Date.parse(body.updatedAt as string), 0);
      expect(res.headers.location).to.equal(`/api/sessions/${body.id}`);
      expect(res.headers.etag).to.equal(`"s${body.id}-v1"`);

      const row = await sessionRow(t.knex, body.id);
      expect(row).to.include({ user_id: owner.user.user.id, version: 1, thumbnail_source: 'auto', is_imported: false });
      expect(await jobsAfter(t.knex, mark)).to.deep.equal([
        ['media', 'sync', { sessionId: body.id }],
        ['thumbnails', 'generate', { sessionId: body.id, generation: row.thumbnail_generation }],
      ]);
      expect((await owner.get(body.id)).body.session).to.deep.equal(body);
    });

    it('takes every editable field; a custom thumbnail needs no generation; sharing makes a snapshot', async () => {
      const cats = await categories(t);
      const mark = await maxOutboxId(t.knex);
      const body = await owner.create({
        title: '  Full  ',
        subreddits: ['Art', 'r/space'],
        categoryId: cats.other.id,
        intervalMin: 5,
        intervalMax: 50,
        transition: 'none',
        aiPrompt: 'prompt',
        captionTheme: 'custom',
        thumbnail: 'https://cdn.example.test/full.png',
        isPublic: true,
        shareToCommunity: true,
        isFavorite: true,
        isManualMode: true,
      });
      const [snap] = await t.knex('community_snapshots').where({ session_id: body.id });
      expect(body).to.deep.include({
        title: 'Full',
        subreddits: ['art', 'space'],
        categoryId: cats.other.id,
        categorySource: 'manual',
        intervalMin: 5,
        intervalMax: 50,
        transition: 'none',
        aiPrompt: 'prompt',
        captionTheme: 'custom',
        thumbnail: 'https://cdn.example.test/full.png',
        isPublic: true,
        shareToCommunity: true,
        isFavorite: true,
        isManualMode: true,
        communitySnapshot: { id: snap.id, status: 'pending' },
      });
      expect(await sessionRow(t.knex, body.id)).to.include({ thumbnail_source: 'custom' });
      expect(await jobsAfter(t.knex, mark)).to.deep.equal([
        ['media', 'sync', { sessionId: body.id }],
        ['snapshots', 'create', { snapshotId: snap.id, sessionId: body.id }],
      ]);
    });

    it('requires title and subreddits and validates like PATCH, writing nothing when refused', async () => {
      const before = await countOwn(owner);
      const mark = await maxOutboxId(t.knex);
      const post = (body: string, type = 'application/json') => t.http().post('/api/sessions').set('Cookie', owner.user.cookie).set('Content-Type', type).send(body);

      expect(failingPointers(expectEnvelope(await post('{}'), 400, 'VALIDATION_ERROR'))).to.deep.equal(['/subreddits', '/title']);
      expect(expectEnvelope(await post('{"title":"x"}'), 400, 'VALIDATION_ERROR').message).to.equal('subreddits is required');
      expect(expectEnvelope(await post('{"subreddits":"pics"}'), 400, 'VALIDATION_ERROR').message).to.equal('title is required');
      const cases: [string, RegExp][] = [
        ['{"title":"x","subreddits":""}', /^subreddits must name at least one subreddit/],
        ['{"title":"x","subreddits":" , r/ "}', /^subreddits (must name at least one|has invalid)/],
        ['{"title":"   ","subreddits":"pics"}', /^title must be 1-200 characters/],
        ['{"title":"x","subreddits":"pics, no way"}', /"no way"/],
        ['{"title":"x","subreddits":"pics","intervalMin":20,"intervalMax":5}', /^intervalMin must be less than or equal to intervalMax/],
        ['{"title":"x","subreddits":"pics","intervalMax":2}', /^intervalMax must be greater than or equal to intervalMin \(2 < 3\)$/],
        ['{"title":"x","subreddits":"pics","intervalMin":0}', /^intervalMin must be >= 1/],
        ['{"title":"x","subreddits":"pics","id":5}', /^id is read-only$/],
        ['{"title":"x","subreddits":"pics","isImported":true}', /^isImported is read-only$/],
        ['{"title":"x","subreddits":"pics","transition":"spin"}', /^transition must be one of/],
        ['{"title":"x","subreddits":"pics","categoryId":999999}', /^categoryId refers to no category/],
        ['{"title":"x","subreddits":"pics","thumbnail":"ftp://x/y"}', /^thumbnail must be an http\(s\) URL/],
        ['[{"title":"x","subreddits":"pics"}]', /^Request body must be a JSON object$/],
      ];
      for (const [text, message] of cases) {
        expect(expectEnvelope(await post(text), 400, 'VALIDATION_ERROR').message, text).to.match(message);
      }
      expectEnvelope(await post('{"title":"x",'), 400, 'INVALID_JSON');
      expectEnvelope(await post('title=x&subreddits=pics', 'application/x-www-form-urlencoded'), 415, 'UNSUPPORTED_MEDIA_TYPE');
      expectEnvelope(await t.http().post('/api/sessions').send({ title: 'x', subreddits: 'pics' }), 401, 'UNAUTHORIZED');
      expect(await countOwn(owner)).to.equal(before);
      expect(await maxOutboxId(t.knex)).to.equal(mark);
    });
  });

  describe('GET /api/sessions', () => {
    let c: Client;
    let a: Body & { id: number };
    let b: Body & { id: number };
    let d: Body & { id: number };
    let art: number;

    before(async () => {
      c = new Client(t, await registerUser(t));
      art = (await categories(t)).all.find((x) => x.slug === 'art')!.id;
      a = await c.create({ title: 'A' });
      b = await c.create({ title: 'B', categoryId: art, shareToCommunity: true });
      d = await c.create({ title: 'D' });
      await stranger.create({ title: 'Not theirs', categoryId: art });
    });

    const list = (query = '') => t.http().get(`/api/sessions${query}`).set('Cookie', c.user.cookie);

    it('lists only the caller’s sessions, newest first, as a bare array of session objects', async () => {
      const res = await list();
      expect(res.status).to.equal(200);
      expect(res.body).to.be.an('array');
      expect(ids(res.body)).to.deep.equal([d.id, b.id, a.id]);
      expect(res.headers['x-total-count']).to.equal('3');
      for (const s of res.body as Body[]) expect(Object.keys(s).sort()).to.deep.equal([...SESSION_KEYS].sort());
      const shared = (res.body as Body[]).find((s) => s.id === b.id)!;
      expect(shared.communitySnapshot).to.deep.include({ status: 'pending' });
      expect((res.body as Body[])[0]).to.deep.equal((await c.get(d.id)).body.session);
    });

    it('filters by categoryId and categorySlug (an unknown one matches nothing)', async () => {
      const byId = await list(`?categoryId=${art}`);
      expect([ids(byId.body), byId.headers['x-total-count']]).to.deep.equal([[b.id], '1']);
      const bySlug = await list('?categorySlug=art');
      expect([ids(bySlug.body), bySlug.headers['x-total-count']]).to.deep.equal([[b.id], '1']);
      expect(ids((await list(`?categoryId=${art}&categorySlug=art`)).body)).to.deep.equal([b.id]);
      expect(ids((await list('?categorySlug=uncategorized')).body)).to.deep.equal([d.id, a.id]);
      const none = await list(`?categoryId=${art}&categorySlug=uncategorized`);
      expect([none.body, none.headers['x-total-count']]).to.deep.equal([[], '0']);
      const unknown = await list('?categorySlug=no-such-category');
      expect([unknown.body, unknown.headers['x-total-count']]).to.deep.equal([[], '0']);
      expect((await list('?categoryId=999999')).body).to.deep.equal([]);
      expectEnvelope(await list('?categoryId=art'), 400, 'VALIDATION_ERROR');
    });

    it('pages with page and pageSize, the total in X-Total-Count', async () => {
      const pages = await Promise.all([1, 2, 3].map((p) => list(`?page=${p}&pageSize=2`)));
      expect(pages.map((p) => ids(p.body))).to.deep.equal([[d.id, b.id], [a.id], []]);
      expect(pages.map((p) => p.headers['x-total-count'])).to.deep.equal(['3', '3', '3']);
      expect(pages.map((p) => p.headers.link)).to.deep.equal(['</api/sessions?page=2&pageSize=2>; rel="next"', undefined, undefined]);
      expect(ids((await list('?pageSize=1&page=2')).body)).to.deep.equal([b.id]);
      for (const bad of ['?pageSize=0', '?pageSize=1001', '?page=0', '?page=x', '?pageSize=1.5']) {
        expectEnvelope(await list(bad), 400, 'VALIDATION_ERROR');
      }
    });

    it('401 without a session', async () => {
      expectEnvelope(await t.http().get('/api/sessions'), 401, 'UNAUTHORIZED');
    });
  });

  describe('GET /api/sessions/:id', () => {
    it('gives the owner {session, media}, media sorted by order, and an ETag', async () => {
      const s = await owner.create();
      await t.knex('session_media').insert([
        { session_id: s.id, media_url: 'https://i.example.test/2.mp4', type: 'video', order: 2, subreddit: 'pics' },
        { session_id: s.id, media_url: 'https://i.example.test/0.jpg', type: 'image', order: 0, caption: 'first', reddit_post_id: 't3_a', reddit_post_url: 'https://reddit.example.test/a' },
        { session_id: s.id, media_url: 'https://i.example.test/1.gif', type: 'gif', order: 1, thumbnail: 'https://i.example.test/1.jpg' },
      ]);
      const res = await owner.get(s.id);
      expect(res.status).to.equal(200);
      expect(Object.keys(res.body)).to.have.members(['session', 'media']);
      expect(res.body.session).to.deep.equal(s);
      expect(res.headers.etag).to.equal(`"s${s.id}-v1"`);
      const media = res.body.media as Body[];
      expect(media.map((m) => [m.order, m.type, m.mediaUrl])).to.deep.equal([
        [0, 'image', 'https://i.example.test/0.jpg'],
        [1, 'gif', 'https://i.example.test/1.gif'],
        [2, 'video', 'https://i.example.test/2.mp4'],
      ]);
      expect(media[0]).to.include({ caption: 'first', redditPostId: 't3_a', redditPostUrl: 'https://reddit.example.test/a', thumbnail: null, subreddit: null });
      expect(Object.keys(media[0]!).sort()).to.deep.equal(['caption', 'id', 'mediaUrl', 'order', 'redditPostId', 'redditPostUrl', 'sessionId', 'subreddit', 'thumbnail', 'type']);
      expect(media.map((m) => m.sessionId)).to.deep.equal([s.id, s.id, s.id]);
    });

    it('hides a private session from others; a public one any logged-in user may read; anonymous callers get 401 either way', async () => {
      const s = await owner.create();
      expectEnvelope(await stranger.get(s.id), 404, 'NOT_FOUND');
      expectEnvelope(await t.http().get(`/api/sessions/${s.id}`), 401, 'UNAUTHORIZED');
      await owner.patchOk(s.id, { isPublic: true });
      const theirs = await stranger.get(s.id);
      expect(theirs.status).to.equal(200);
      expect(theirs.body.session).to.include({ id: s.id, userId: owner.user.user.id, isPublic: true });
      expectEnvelope(await t.http().get(`/api/sessions/${s.id}`), 401, 'UNAUTHORIZED');
      await owner.patchOk(s.id, { isPublic: false });
      expectEnvelope(await stranger.get(s.id), 404, 'NOT_FOUND');
      expectEnvelope(await owner.get(2_000_000_000), 404, 'NOT_FOUND');
    });
  });

  describe('DELETE /api/sessions/:id', () => {
    it('204, then the session is gone for good; the owner’s other sessions stay', async () => {
      const keep = await owner.create({ title: 'Keep' });
      const s = await owner.create({ title: 'Delete me' });
      const res = await t.http().delete(`/api/sessions/${s.id}`).set('Cookie', owner.user.cookie);
      expect(res.status).to.equal(204);
      expect(await t.knex('sessions').where({ id: s.id })).to.deep.equal([]);
      expectEnvelope(await owner.get(s.id), 404, 'NOT_FOUND');
      expectEnvelope(await owner.patch(s.id, { title: 'Back?' }), 404, 'NOT_FOUND');
      expect((await owner.get(keep.id)).status).to.equal(200);
    });
  });

  describe('GET /api/categories', () => {
    it('lists the categories with exactly one default, without login', async () => {
      const res = await t.http().get('/api/categories');
      expect(res.status).to.equal(200);
      const all = res.body as Body[];
      expect(all.length).to.be.greaterThan(1);
      for (const c of all) expect(Object.keys(c).sort()).to.deep.equal(['id', 'isDefault', 'name', 'slug']);
      expect(all.filter((c) => c.isDefault).map((c) => [c.slug, c.name])).to.deep.equal([['uncategorized', 'Uncategorized']]);
      const rows = await t.knex('categories').orderBy('id');
      expect(all.map((c) => c.id).sort((x, y) => Number(x) - Number(y))).to.deep.equal(rows.map((r: { id: number }) => r.id));
    });
  });

  describe('GET /api/openapi.json', () => {
    it('documents PATCH /api/sessions/{id} with the PatchSession schema that validates requests', async () => {
      const res = await t.http().get('/api/openapi.json');
      expect(res.status).to.equal(200);
      const doc = res.body as { openapi: string; paths: Record<string, Record<string, Body>>; components: { schemas: Record<string, Body> } };
      expect(doc.openapi).to.match(/^3\./);
      for (const path of ['/api/community', '/api/community/sessions/{snapshotId}', '/api/admin/overview', '/api/admin/snapshots/{id}/rerun', '/readyz']) {
        expect(doc.paths, path).to.have.property(path);
      }
      const patch = doc.paths['/api/sessions/{id}']!.patch!;
      expect(patch.requestBody).to.deep.equal({ required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/PatchSession' } } } });
      expect(Object.keys(patch.responses as Body)).to.include.members(['200', '400', '401', '404', '412', '413', '415']);
      const schema = doc.components.schemas.PatchSession!;
      expect(schema).to.include({ type: 'object', additionalProperties: false });
      expect(Object.keys(schema.properties as Body).sort()).to.deep.equal([...EDITABLE].sort());
      expect((schema.properties as Record<string, Body>).intervalMin).to.deep.equal({ type: 'integer', minimum: 1, maximum: 60 });
      expect((schema.properties as Record<string, Body>).transition).to.deep.equal({ type: 'string', enum: ['fade', 'slide', 'zoom', 'flip', 'none'] });
      expect((schema.properties as Record<string, Body>).captionTheme).to.deep.equal({ type: 'string', enum: t.config.captionThemes });

      // The published schema says what the server does.
      const validate = new Ajv({ strict: false, allowUnionTypes: true }).compile(schema);
      const s = await owner.create();
      for (const body of [{ title: 'Updated Session Title', intervalMin: 4, intervalMax: 12 }, { bogus: 1 }, { intervalMin: '4' }, { id: 1 }, { categoryId: null, aiPrompt: null }, { transition: 'spin' }]) {
        const served = await owner.patch(s.id, body);
        expect(served.status === 200, `${JSON.stringify(body)} → ${served.status}`).to.equal(validate(body));
      }
    });
  });
});
