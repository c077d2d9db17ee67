import { expect } from 'chai';
import { createTestApp, registerUser, type TestUser } from './helpers/app.js';
import { maxOutboxId, newSession, outboxSince } from './helpers/sessions.js';

describe('sessions API: create, list, read, delete; categories; OpenAPI', () => {
  const t = createTestApp();
  let owner: TestUser;
  let other: TestUser;

  before(async () => {
    owner = await registerUser(t);
    other = await registerUser(t);
  });

  it('POST creates with the reference defaults, 201, and queues media sync and a thumbnail', async () => {
    const mark = await maxOutboxId(t.knex);
    const res = await t.http().post('/api/sessions').set('Cookie', owner.cookie).send({ title: 'Fresh', subreddits: 'pics' }).expect(201);
    const categories = (await t.http().get('/api/categories').expect(200)).body as { id: number; slug: string; isDefault: boolean }[];
    expect(categories.filter((c) => c.isDefault)).to.have.length(1);
    expect(res.body).to.include({
      title: 'Fresh',
      userId: owner.user.id,
      intervalMin: 3,
      intervalMax: 10,
      transition: 'fade',
      isPublic: false,
      shareToCommunity: false,
      isFavorite: false,
      isManualMode: false,
      isImported: false,
      categoryId: categories.find((c) => c.isDefault)!.id,
      categorySource: 'default',
      thumbnail: null,
    });
    expect(res.headers.location).to.equal(`/api/sessions/${res.body.id}`);
    const rows = await outboxSince(t.knex, res.body.id, mark);
    expect(rows.map((r) => [r.queue, r.job_name])).to.deep.equal([['media', 'sync'], ['thumbnails', 'generate']]);
  });

  it('POST requires title and subreddits, and validates like PATCH', async () => {
    const missing = await t.http().post('/api/sessions').set('Cookie', owner.cookie).send({}).expect(400);
    expect(missing.body.details.fields.map((f: { pointer: string }) => f.pointer).sort()).to.deep.equal(['/subreddits', '/title']);
    await t.http().post('/api/sessions').set('Cookie', owner.cookie).send({ title: 'x', subreddits: '' }).expect(400);
    await t.http().post('/api/sessions').set('Cookie', owner.cookie).send({ title: 'x', subreddits: 'pics', intervalMin: 20, intervalMax: 5 }).expect(400);
    await t.http().post('/api/sessions').set('Cookie', owner.cookie).send({ title: 'x', subreddits: 'pics', id: 5 }).expect(400);
    await t.http().post('/api/sessions').send({ title: 'x', subreddits: 'pics' }).expect(401);
  });

  it('GET lists own sessions newest first, as a bare array, filtered and paged with X-Total-Count', async () => {
    const u = await registerUser(t);
    const categories = (await t.http().get('/api/categories').expect(200)).body as { id: number; slug: string; isDefault: boolean }[];
    const art = categories.find((c) => c.slug === 'art')!;
    const a = await newSession(t, u, { title: 'A' });
    const b = await newSession(t, u, { title: 'B', categoryId: art.id });
    const c = await newSession(t, u, { title: 'C' });
    await newSession(t, other, { title: 'Not mine' });

    const all = await t.http().get('/api/sessions').set('Cookie', u.cookie).expect(200);
    expect(all.body.map((s: { id: number }) => s.id)).to.deep.equal([c.id, b.id, a.id]);
    expect(all.headers['x-total-count']).to.equal('3');

    const byId = await t.http().get(`/api/sessions?categoryId=${art.id}`).set('Cookie', u.cookie).expect(200);
    expect(byId.body.map((s: { id: number }) => s.id)).to.deep.equal([b.id]);
    const bySlug = await t.http().get('/api/sessions?categorySlug=art').set('Cookie', u.cookie).expect(200);
    expect(bySlug.body.map((s: { id: number }) => s.id)).to.deep.equal([b.id]);
    const unknown = await t.http().get('/api/sessions?categorySlug=nope').set('Cookie', u.cookie).expect(200);
    expect(unknown.body).to.deep.equal([]);

    const page2 = await t.http().get('/api/sessions?page=2&pageSize=2').set('Cookie', u.cookie).expect(200);
    expect(page2.body.map((s: { id: number }) => s.id)).to.deep.equal([a.id]);
    expect(page2.headers['x-total-count']).to.equal('3');
    await t.http().get('/api/sessions?pageSize=0').set('Cookie', u.cookie).expect(400);
    await t.http().get('/api/sessions?page=x').set('Cookie', u.cookie).expect(400);
    await t.http().get('/api/sessions').expect(401);
  });

  it('GET :id returns {session, media} sorted by order to the owner, and a public one to anyone', async () => {
    const s = await newSession(t, owner);
    await t.knex('session_media').insert([
      { session_id: s.id, media_url: 'https://i.example.test/2.jpg', type: 'image', order: 1 },
      { session_id: s.id, media_url: 'https://i.example.test/1.jpg', type: 'gif', order: 0 },
    ]);
    const res = await t.http().get(`/api/sessions/${s.id}`).set('Cookie', owner.cookie).expect(200);
    expect(res.body.session.id).to.equal(s.id);
    expect(res.body.media.map((m: { order: number; mediaUrl: string }) => [m.order, m.mediaUrl])).to.deep.equal([
      [0, 'https://i.example.test/1.jpg'],
      [1, 'https://i.example.test/2.jpg'],
    ]);
    await t.http().get(`/api/sessions/${s.id}`).set('Cookie', other.cookie).expect(404);
    await t.http().get(`/api/sessions/${s.id}`).expect(404);
    await t.http().patch(`/api/sessions/${s.id}`).set('Cookie', owner.cookie).send({ isPublic: true }).expect(200);
    await t.http().get(`/api/sessions/${s.id}`).set('Cookie', other.cookie).expect(200);
    await t.http().get(`/api/sessions/${s.id}`).expect(200);
    // Public is read-only to others.
    await t.http().patch(`/api/sessions/${s.id}`).set('Cookie', other.cookie).send({ title: 'mine now' }).expect(404);
    await t.http().delete(`/api/sessions/${s.id}`).set('Cookie', other.cookie).expect(404);
  });

  it('DELETE answers 204 once, then 404', async () => {
    const s = await newSession(t, owner);
    await t.http().delete(`/api/sessions/${s.id}`).set('Cookie', owner.cookie).expect(204);
    await t.http().delete(`/api/sessions/${s.id}`).set('Cookie', owner.cookie).expect(404);
  });

  it('serves an OpenAPI document built from the request schemas', async () => {
    const res = await t.http().get('/api/openapi.json').expect(200);
    expect(res.body.openapi).to.match(/^3\./);
    expect(res.body.paths['/api/sessions/{id}']).to.have.keys('parameters', 'get', 'patch', 'delete');
    const schema = res.body.components.schemas.PatchSession;
    expect(schema.additionalProperties).to.equal(false);
    expect(schema.properties.intervalMin).to.deep.equal({ type: 'integer', minimum: 1, maximum: 60 });
  });

  it('answers unknown routes with the error envelope', async () => {
    const res = await t.http().get('/api/nothing-here').expect(404);
    expect(res.body).to.include({ error: 'Not Found', code: 'NOT_FOUND' });
  });
});
