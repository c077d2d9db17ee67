import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { expect } from 'chai';
import type supertest from 'supertest';
import { pino } from 'pino';
import { QUEUE_NAMES, createJobClient } from '../workers/index.js';
import { createTestApp, promote, registerUser, testConfig, type TestApp, type TestUser } from './helpers/app.js';
import { testKnex } from './helpers/database.js';
import { deleteQueueKeys } from '../scripts/lib/queue-keys.js';

type Json = Record<string, unknown>;
interface OpenApiDoc {
  paths: Record<string, Record<string, { responses?: Record<string, { content?: { 'application/json'?: { schema?: Json } } }> }>>;
  components: { schemas: Record<string, Json> };
}

/**
 * Every JSON response of the API, from real requests against the real app, validated against the
 * schema the SERVED document gives for its path, method and status. The response schemas say
 * `additionalProperties: false` and list every field as required, so a serializer that gains a field
 * (or drops one) without its schema fails here.
 */
describe('OpenAPI: every response matches the schema the served document gives it', function () {
  this.timeout(30_000);
  const config = testConfig();
  // Queues of this file's own prefix, for the overview's counts and retry-failed.
  const jobs = createJobClient(config, testKnex(), pino({ level: 'silent' }), 'showrunner-test');
  let t: TestApp;
  let noQueues: TestApp;
  let doc: OpenApiDoc;
  let user: TestUser;
  let admin: TestUser;
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  // ajv-formats is CommonJS: its module object is the plugin, and `.default` names it for NodeNext too.
  addFormats.default(ajv);
  // The components ride along in each compiled schema so that `#/components/schemas/...` resolves.
  ajv.addKeyword('components');
  const checked = new Set<string>();

  /** Asserts the status, then validates the body against the documented schema of that response. */
  function expectDocumented<T = Json>(res: supertest.Response, method: string, path: string, status: number): T {
    expect(res.status, `${method.toUpperCase()} ${path}: ${res.text}`).to.equal(status);
    const schema = doc.paths[path]?.[method]?.responses?.[String(status)]?.content?.['application/json']?.schema;
    expect(schema, `${method.toUpperCase()} ${path} ${status} has a documented JSON schema`).to.be.an('object');
    const validate = ajv.compile({ ...schema, components: doc.components });
    const ok = validate(res.body);
    const errors = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`).join('; ');
    expect(ok, `${method.toUpperCase()} ${path} ${status}: ${errors} in ${JSON.stringify(res.body)}`).to.equal(true);
    checked.add(`${method} ${path} ${status}`);
    return res.body as T;
  }

  /** A `#/components/schemas/…` reference's schema; any other schema as it is. */
  const resolve = (schema: Json): Json => {
    const ref = schema.$ref as string | undefined;
    if (ref === undefined) return schema;
    const target = doc.components.schemas[ref.replace('#/components/schemas/', '')];
    expect(target, `${ref} is in the document's components`).to.be.an('object');
    return target!;
  };

  /**
   * What a response should be, shaped by its schema in the document: each property the schema
   * lists, with its value from `values` (nested objects the same way), and nothing the schema does
   * not list. A property the schema lists and `values` lacks fails here, named.
   */
  function fromSpec(schema: Json, values: Json, at = ''): Json {
    const properties = resolve(schema).properties as Record<string, Json> | undefined;
    expect(properties, `${at || '/'} is an object with properties in the document`).to.be.an('object');
    return Object.fromEntries(
      Object.entries(properties!).map(([name, property]) => {
        expect(values, `a value for ${at}/${name}, which the document lists`).to.have.property(name);
        const value = values[name];
        const nested = resolve(property).properties !== undefined && value !== null && typeof value === 'object' && !Array.isArray(value);
        return [name, nested ? fromSpec(property, value as Json, `${at}/${name}`) : value];
      }),
    );
  }

  const as = (who: TestUser) => ({
    get: (url: string) => t.http().get(url).set('Cookie', who.cookie),
    post: (url: string, body?: object) => t.http().post(url).set('Cookie', who.cookie).send(body),
    patch: (url: string, body: object) => t.http().patch(url).set('Cookie', who.cookie).send(body),
  });

  /** Creates a session through the API (its response is checked in the sessions test, not here). */
  async function createSession(body: object): Promise<number> {
    const res = await as(user).post('/api/sessions', body);
    expect(res.status, res.text).to.equal(201);
    return (res.body as { id: number }).id;
  }

  // What the requests read: a session with media, a ready snapshot with media, a failed snapshot,
  // and an outbox row that failed to dispatch.
  let plainId: number;
  let sharedId: number;
  let readySnapshotId: number;
  let failedSnapshotId: number;

  before(async () => {
    t = createTestApp({ knex: testKnex(), deps: { queues: jobs.producer } });
    noQueues = createTestApp({ knex: t.knex });
    doc = (await t.http().get('/api/openapi.json').expect(200)).body as OpenApiDoc;
    user = await registerUser(t, { firstName: 'Schema' });
    admin = await registerUser(t);
    await promote(t, admin);

    plainId = await createSession({ title: 'Plain', subreddits: 'pics' });
    sharedId = await createSession({ title: 'Shared', subreddits: ['art', 'space'], aiPrompt: 'p', thumbnail: 'https://cdn.example.test/t.png', shareToCommunity: true });
    const failingId = await createSession({ title: 'Failing', subreddits: 'art', shareToCommunity: true });
    const snapshotOf = async (sessionId: number) => ((await t.knex('community_snapshots').where({ session_id: sessionId }).first('id')) as { id: number }).id;
    readySnapshotId = await snapshotOf(sharedId);
    failedSnapshotId = await snapshotOf(failingId);

    await t.knex('session_media').insert([
      { session_id: plainId, media_url: 'https://i.example.test/a.jpg', type: 'image', order: 0 },
      {
        session_id: plainId,
        media_url: 'https://i.example.test/b.mp4',
        thumbnail: 'https://i.example.test/b.jpg',
        caption: 'A caption',
        type: 'video',
        reddit_post_id: 'abc123',
        reddit_post_url: 'https://www.reddit.com/r/pics/comments/abc123/',
        subreddit: 'pics',
        order: 1,
      },
    ]);
    await t.knex('community_snapshot_media').insert([
      {
        snapshot_id: readySnapshotId,
        source_url: 'https://i.example.test/c.jpg',
        type: 'image',
        order: 0,
        blob_name: `snapshots/${readySnapshotId}/0.jpg`,
        blob_url: `https://blobs.example.test/snapshots/${readySnapshotId}/0.jpg`,
        content_type: 'image/jpeg',
        bytes: 1234,
        checksum: 'sha256-abc',
        subreddit: 'art',
        copied_at: new Date(),
      },
      { snapshot_id: readySnapshotId, source_url: 'https://i.example.test/d.gif', type: 'gif', order: 1 },
    ]);
    await t
      .knex('community_snapshots')
      .where({ id: readySnapshotId })
      .update({ status: 'ready', ready_at: new Date(), media_count: 2, copied_count: 2, bytes_copied: 1234, thumbnail_url: 'https://blobs.example.test/t.png' });
    await t.knex('community_snapshots').where({ id: failedSnapshotId }).update({ status: 'failed', last_error: 'blob storage unreachable', attempts: 3 });
    await t.knex('job_outbox').where('payload', '@>', JSON.stringify({ sessionId: plainId })).update({ last_error: 'Redis said no', attempts: 1 });
  });
  after(async () => {
    await jobs.close();
    await deleteQueueKeys(config.redisUrl, config.queuePrefix);
  });

  it('auth: register, login, the current user', async () => {
    const email = `openapi-${Date.now()}@example.test`;
    expectDocumented(await t.http().post('/api/auth/register').send({ email, password: 'long enough password', lastName: null }), 'post', '/api/auth/register', 201);
    expectDocumented(await t.http().post('/api/auth/login').send({ email, password: 'long enough password' }), 'post', '/api/auth/login', 200);
    expectDocumented(await as(user).get('/api/auth/user'), 'get', '/api/auth/user', 200);
  });

  it('categories', async () => {
    expect(expectDocumented<unknown[]>(await as(user).get('/api/categories'), 'get', '/api/categories', 200)).to.have.length.above(0);
  });

  it('sessions: create, list, read with media, patch', async () => {
    expectDocumented(await as(user).post('/api/sessions', { title: 'Created', subreddits: 'aww', categoryId: null }), 'post', '/api/sessions', 201);
    const list = expectDocumented<{ communitySnapshot: unknown }[]>(await as(user).get('/api/sessions'), 'get', '/api/sessions', 200);
    expect(list.map((s) => s.communitySnapshot)).to.deep.include({ id: readySnapshotId, status: 'ready' }).and.to.include(null);
    expect(expectDocumented(await as(user).get(`/api/sessions/${plainId}`), 'get', '/api/sessions/{id}', 200).media).to.have.length(2);
    expectDocumented(await as(user).patch(`/api/sessions/${plainId}`, { title: 'Patched', categoryId: null, aiPrompt: null }), 'patch', '/api/sessions/{id}', 200);
  });

  it('community: the feed and a ready snapshot with its media', async () => {
    expect(expectDocumented(await as(user).get(`/api/community?creatorId=${user.user.id}`), 'get', '/api/community', 200).items).to.have.length(1);
    const detail = expectDocumented(await as(user).get(`/api/community/sessions/${readySnapshotId}`), 'get', '/api/community/sessions/{snapshotId}', 200);
    expect(detail.media).to.have.length(2);
  });

  it('community: like and unlike, the hot feed, a media-only page, and their errors', async () => {
    const path = '/api/community/sessions/{snapshotId}/like';
    const url = `/api/community/sessions/${readySnapshotId}/like`;
    expect(expectDocumented(await as(admin).post(url), 'post', path, 200)).to.deep.equal({ liked: true, likeCount: 1 });
    const top = expectDocumented<{ items: { id: number; likeCount: number; isLikedByUser: boolean }[] }>(await as(admin).get('/api/community?sort=hot&contentType=sessions'), 'get', '/api/community', 200);
    expect(top.items.find((i) => i.id === readySnapshotId)).to.include({ likeCount: 1, isLikedByUser: true });
    expectDocumented(await as(admin).get('/api/community?contentType=captions'), 'get', '/api/community', 200);
    expect(expectDocumented(await t.http().delete(url).set('Cookie', admin.cookie), 'delete', path, 200)).to.deep.equal({ liked: false, likeCount: 0 });
    expectDocumented(await t.http().post(url), 'post', path, 401);
    expectDocumented(await t.http().delete(url), 'delete', path, 401);
    expectDocumented(await as(admin).post(`/api/community/sessions/${failedSnapshotId}/like`), 'post', path, 404);
    expectDocumented(await as(admin).post('/api/community/sessions/0/like'), 'post', path, 400);
    expectDocumented(await as(admin).get('/api/community?sort=best'), 'get', '/api/community', 400);
  });

  it('share links: share, preview, read, revoke, and their errors', async () => {
    const link = expectDocumented<{ shareCode: string }>(await as(user).post(`/api/sessions/${plainId}/share`), 'post', '/api/sessions/{id}/share', 200);
    expectDocumented(await t.http().get(`/api/shared/${link.shareCode}/preview`), 'get', '/api/shared/{code}/preview', 200);
    expect(expectDocumented(await as(admin).get(`/api/shared/${link.shareCode}`), 'get', '/api/shared/{code}', 200).media).to.have.length(2);
    expectDocumented(await t.http().get(`/api/shared/${link.shareCode}`), 'get', '/api/shared/{code}', 401);
    expectDocumented(await as(admin).post(`/api/sessions/${plainId}/share`), 'post', '/api/sessions/{id}/share', 404);
    expect((await t.http().delete(`/api/sessions/${plainId}/share`).set('Cookie', user.cookie)).status).to.equal(204);
    expectDocumented(await t.http().get(`/api/shared/${link.shareCode}/preview`), 'get', '/api/shared/{code}/preview', 404);
    expectDocumented(await as(admin).get('/api/shared/not-a-code'), 'get', '/api/shared/{code}', 404);
  });

  it('community: save to library, again (reused), and its errors', async () => {
    const path = '/api/community/sessions/{snapshotId}/save';
    const sessionId = await createSession({ title: 'Savable', subreddits: 'pics', shareToCommunity: true });
    const snapshotId = ((await t.knex('community_snapshots').where({ session_id: sessionId }).first('id')) as { id: number }).id;
    const hash = 'ab'.repeat(32);
    const blobName = `media/sha256/ab/${hash}.jpg`;
    await t.knex('durable_blobs').insert({ sha256: hash, blob_name: blobName, content_type: 'image/jpeg', bytes: 10 }).onConflict('sha256').ignore();
    await t.knex('community_snapshot_media').insert({
      snapshot_id: snapshotId, source_url: 'https://i.example.test/s.jpg', type: 'image', order: 0, blob_name: blobName,
      blob_url: `https://blobs.example.test/${blobName}`, blob_sha256: hash, content_type: 'image/jpeg', bytes: 10, checksum: hash, copied_at: new Date(),
    });
    await t.knex('community_snapshots').where({ id: snapshotId }).update({ status: 'ready', ready_at: new Date(), media_count: 1, copied_count: 1 });
    const saved = expectDocumented<{ sessionId: number }>(await as(admin).post(`/api/community/sessions/${snapshotId}/save`), 'post', path, 200);
    expect(expectDocumented(await as(admin).post(`/api/community/sessions/${snapshotId}/save`), 'post', path, 200)).to.deep.equal({ success: true, sessionId: saved.sessionId, reused: true });
    expectDocumented(await t.http().post(`/api/community/sessions/${snapshotId}/save`), 'post', path, 401);
    expectDocumented(await as(admin).post(`/api/community/sessions/${failedSnapshotId}/save`), 'post', path, 404);
    expectDocumented(await as(admin).post('/api/community/sessions/0/save'), 'post', path, 400);
  });

  it('admin: overview (with and without queues), snapshots, rerun, thumbnail, retry-failed', async () => {
    const overview = expectDocumented(await as(admin).get('/api/admin/overview'), 'get', '/api/admin/overview', 200);
    expect(overview.queues).to.have.keys(...QUEUE_NAMES);
    expect((overview.outbox as { recentErrors: unknown[] }).recentErrors).to.have.length.above(0);
    const unqueued = await noQueues.http().get('/api/admin/overview').set('Cookie', admin.cookie);
    expect(expectDocumented(unqueued, 'get', '/api/admin/overview', 200).queues).to.have.keys('error');

    expect(expectDocumented(await as(admin).get('/api/admin/snapshots?status=failed'), 'get', '/api/admin/snapshots', 200).items).to.have.length.above(0);
    expectDocumented(await as(admin).get('/api/admin/snapshots'), 'get', '/api/admin/snapshots', 200);

    expectDocumented(await as(admin).post(`/api/admin/snapshots/${failedSnapshotId}/rerun`), 'post', '/api/admin/snapshots/{id}/rerun', 202);
    expectDocumented(await as(admin).post(`/api/admin/sessions/${plainId}/thumbnail`), 'post', '/api/admin/sessions/{id}/thumbnail', 202);
    expectDocumented(await as(admin).post('/api/admin/queues/media/retry-failed'), 'post', '/api/admin/queues/{queue}/retry-failed', 202);
  });

  it('admin: moderation (hide, unhide, remove, lift, the audit)', async () => {
    const sessionId = (await as(admin).post('/api/sessions', { title: 'Moderated', subreddits: 'pics', shareToCommunity: true }).expect(201)).body.id as number;
    const snapshotId = ((await t.knex('community_snapshots').where({ session_id: sessionId }).first('id')) as { id: number }).id;
    await t.knex('community_snapshots').where({ id: snapshotId }).update({ status: 'ready', ready_at: new Date() });
    const reason = { reason: 'schema check' };
    expectDocumented(await as(admin).post(`/api/admin/community/${snapshotId}/hide`, reason), 'post', '/api/admin/community/{id}/hide', 200);
    const feed = expectDocumented<{ items: Json[] }>(await as(admin).get(`/api/community?creatorId=${admin.user.id}`), 'get', '/api/community', 200);
    // The item as the document describes a feed item, with the values this test gave it.
    const page = doc.paths['/api/community']!.get!.responses!['200']!.content!['application/json']!.schema!;
    const itemSchema = (resolve(page).properties as { items: { items: Json } }).items.items;
    const row = await t.knex('community_snapshots').where({ id: snapshotId }).first();
    const category = await t.knex('categories').where({ id: row.category_id }).first('slug');
    const creator = await t.knex('users').where({ id: admin.user.id }).first('first_name');
    const expected = fromSpec(itemSchema, {
      kind: 'session', id: snapshotId, sessionId, title: 'Moderated', thumbnail: null, subreddits: ['pics'],
      categoryId: row.category_id, categorySlug: category.slug, isManualMode: false, isImported: false,
      likeCount: 0, isLikedByUser: false, isHidden: true, createdAt: (row.ready_at as Date).toISOString(),
      user: { id: admin.user.id, firstName: creator.first_name },
    });
    expect(feed.items.find((i) => i.id === snapshotId)).to.deep.equal(expected);
    expectDocumented(await as(admin).post(`/api/admin/community/${snapshotId}/unhide`, reason), 'post', '/api/admin/community/{id}/unhide', 200);
    expectDocumented(await as(admin).post(`/api/admin/community/${snapshotId}/hide`, {}), 'post', '/api/admin/community/{id}/hide', 400);
    expectDocumented(await t.http().delete(`/api/admin/community/${snapshotId}`).set('Cookie', admin.cookie).send(reason), 'delete', '/api/admin/community/{id}', 200);
    const removed = expectDocumented<{ communityModeration: unknown }>(await as(admin).patch(`/api/sessions/${sessionId}`, { shareToCommunity: true }), 'patch', '/api/sessions/{id}', 403);
    expect(removed).to.not.have.property('communityModeration');
    const owned = expectDocumented<{ session: { communityModeration: { status: string } } }>(await as(admin).get(`/api/sessions/${sessionId}`), 'get', '/api/sessions/{id}', 200);
    expect(owned.session.communityModeration.status).to.equal('removed');
    expectDocumented(await as(admin).post(`/api/admin/sessions/${sessionId}/community/lift`, reason), 'post', '/api/admin/sessions/{id}/community/lift', 200);
    expectDocumented(await as(admin).post(`/api/admin/sessions/${sessionId}/community/lift`, reason), 'post', '/api/admin/sessions/{id}/community/lift', 409);
    expect(expectDocumented(await as(admin).get('/api/admin/audit?pageSize=2'), 'get', '/api/admin/audit', 200).items).to.have.length(2);
  });

  it('errors: the envelope, with and without details', async () => {
    const invalid = expectDocumented(await as(user).patch(`/api/sessions/${plainId}`, { intervalMin: '4', bogus: 1 }), 'patch', '/api/sessions/{id}', 400);
    expect((invalid.details as { fields: unknown[] }).fields).to.have.length(2);
    expectDocumented(await t.http().get('/api/sessions'), 'get', '/api/sessions', 401);
    expectDocumented(await as(user).get('/api/sessions/2147483646'), 'get', '/api/sessions/{id}', 404);
    expectDocumented(await as(user).get('/api/admin/overview'), 'get', '/api/admin/overview', 403);
    expectDocumented(await as(admin).post(`/api/admin/sessions/${sharedId}/thumbnail`), 'post', '/api/admin/sessions/{id}/thumbnail', 409);
  });

  it('every response schema is strict: each object in it, through its references, says additionalProperties: false', () => {
    const loose: string[] = [];
    const seen = new Set<string>();
    let objects = 0;
    const walk = (schema: Json, at: string): void => {
      const ref = schema.$ref as string | undefined;
      if (ref !== undefined) {
        if (!seen.has(ref)) {
          seen.add(ref);
          walk(resolve(schema), ref);
        }
        return;
      }
      const types = ([] as unknown[]).concat(schema.type ?? []);
      if (types.includes('object') || schema.properties !== undefined) {
        objects += 1;
        if (schema.additionalProperties !== false) loose.push(at);
      }
      for (const [name, property] of Object.entries((schema.properties ?? {}) as Record<string, Json>)) walk(property, `${at}/${name}`);
      if (schema.items) walk(schema.items as Json, `${at}[]`);
      for (const key of ['anyOf', 'oneOf', 'allOf'] as const) for (const [i, branch] of ((schema[key] ?? []) as Json[]).entries()) walk(branch, `${at} ${key}[${i}]`);
    };
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        for (const [status, response] of Object.entries(op.responses ?? {})) {
          const schema = response.content?.['application/json']?.schema;
          if (schema) walk(schema, `${method.toUpperCase()} ${path} ${status}`);
        }
      }
    }
    expect(objects, 'object schemas found').to.be.above(20);
    expect(loose, 'object schemas that allow properties they do not list').to.deep.equal([]);
  });

  it('covers every documented 2xx JSON response', () => {
    const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).flatMap(([method, op]) =>
        Object.entries(op.responses ?? {})
          .filter(([status, response]) => status.startsWith('2') && response.content?.['application/json'])
          .map(([status]) => `${method} ${path} ${status}`),
      ),
    );
    expect([...checked].filter((c) => / 2\d\d$/.test(c)).sort()).to.deep.equal(documented.sort());
  });
});
