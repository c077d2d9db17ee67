import { expect } from 'chai';
import { createTestApp, registerUser, sessionCookie, type TestUser } from './helpers/app.js';
import { maxOutboxId, newSession, outboxSince, snapshotState } from './helpers/sessions.js';

/** The keys and types of the reference API's PATCH response. */
const REFERENCE_TYPES: Record<string, string> = {
  id: 'number',
  title: 'string',
  userId: 'string',
  subreddits: 'array',
  categoryId: 'number',
  intervalMin: 'number',
  intervalMax: 'number',
  transition: 'string',
  thumbnail: 'string|null',
  captionTheme: 'string',
  isPublic: 'boolean',
  shareToCommunity: 'boolean',
  isFavorite: 'boolean',
  isManualMode: 'boolean',
  isImported: 'boolean',
  createdAt: 'string',
  updatedAt: 'string',
};

const typeOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

describe('PATCH /api/sessions/:id', () => {
  const t = createTestApp();
  let owner: TestUser;

  before(async () => {
    owner = await registerUser(t);
  });

  const patch = (id: number, body: unknown, user: TestUser = owner) =>
    t.http().patch(`/api/sessions/${id}`).set('Cookie', user.cookie).set('Content-Type', 'application/json').send(JSON.stringify(body));

  /** Sends the PATCH, expects a 400, and proves the row, the snapshot and the outbox are unchanged. */
  async function rejected(id: number, body: unknown, pattern: RegExp, status = 400): Promise<Record<string, unknown>> {
    const before = await snapshotState(t.knex, id);
    const res = await patch(id, body);
    expect(res.status, JSON.stringify(res.body)).to.equal(status);
    expect(res.body).to.have.keys(status === 400 ? ['error', 'message', 'code', 'details'] : ['error', 'message', 'code']);
    expect(res.body.message).to.match(pattern);
    expect(await snapshotState(t.knex, id), 'rejected PATCH changed nothing').to.equal(before);
    return res.body as Record<string, unknown>;
  }

  it('applies the reference example sent with only the connect.sid cookie', async () => {
    const created = await newSession(t, owner, { transition: 'zoom', isFavorite: true });
    const res = await t
      .http()
      .patch(`/api/sessions/${created.id}`)
      .set('Cookie', owner.cookie)
      .set('Content-Type', 'application/json')
      .send('{"title": "Updated Session Title", "intervalMin": 4, "intervalMax": 12}')
      .expect(200);
    for (const [key, type] of Object.entries(REFERENCE_TYPES)) {
      expect(res.body, key).to.have.property(key);
      expect(type.split('|'), `${key} is ${typeOf(res.body[key])}`).to.include(typeOf(res.body[key]));
    }
    expect(res.body).to.include({ title: 'Updated Session Title', intervalMin: 4, intervalMax: 12, transition: 'zoom', isFavorite: true });
    expect(res.body.subreddits).to.deep.equal(['pics', 'earthporn']);
    expect(Date.parse(res.body.updatedAt)).to.be.greaterThan(Date.parse(created.updatedAt as string));
    expect(res.body.createdAt).to.equal(created.createdAt);
    expect(res.headers.etag).to.match(/^"s\d+-v2"$/);
  });

  describe('intervals', () => {
    for (const field of ['intervalMin', 'intervalMax'] as const) {
      for (const value of [1, 60]) {
        it(`accepts ${field} = ${value} when the merged range holds`, async () => {
          const s = await newSession(t, owner, { intervalMin: 1, intervalMax: 60 });
          const res = await patch(s.id, { [field]: value }).expect(200);
          expect(res.body[field]).to.equal(value);
        });
      }
      for (const value of [0, 61, -1, 2.5]) {
        it(`rejects ${field} = ${value}`, async () => {
          const s = await newSession(t, owner);
          const body = await rejected(s.id, { [field]: value }, new RegExp(field));
          expect((body.details as { fields: { pointer: string }[] }).fields[0]!.pointer).to.equal(`/${field}`);
        });
      }
    }
    it('rejects a min above the stored max, and a max below the stored min', async () => {
      const s = await newSession(t, owner, { intervalMin: 5, intervalMax: 10 });
      await rejected(s.id, { intervalMin: 11 }, /intervalMin.*less than or equal to intervalMax/);
      await rejected(s.id, { intervalMax: 4 }, /intervalMax.*greater than or equal to intervalMin/);
      await rejected(s.id, { intervalMin: 20, intervalMax: 19 }, /intervalMin/);
      await patch(s.id, { intervalMin: 10, intervalMax: 10 }).expect(200);
    });
  });

  describe('title', () => {
    it('trims, and rejects empty, blank and over-long titles', async () => {
      const s = await newSession(t, owner);
      expect((await patch(s.id, { title: '  Spaced  ' }).expect(200)).body.title).to.equal('Spaced');
      await rejected(s.id, { title: '' }, /title must be 1-200 characters/);
      await rejected(s.id, { title: '   ' }, /title/);
      await rejected(s.id, { title: 'x'.repeat(201) }, /title/);
      expect((await patch(s.id, { title: 'x'.repeat(200) }).expect(200)).body.title).to.have.length(200);
    });
  });

  describe('enums', () => {
    for (const transition of ['fade', 'slide', 'zoom', 'flip', 'none']) {
      it(`accepts transition ${transition}`, async () => {
        const s = await newSession(t, owner, { transition: transition === 'fade' ? 'none' : 'fade' });
        expect((await patch(s.id, { transition }).expect(200)).body.transition).to.equal(transition);
      });
    }
    it('rejects an unknown transition, naming the allowed ones', async () => {
      const s = await newSession(t, owner);
      await rejected(s.id, { transition: 'spin' }, /transition must be one of: "fade", "slide", "zoom", "flip", "none"/);
    });
    for (const theme of ['joi', 'forced-bi', 'beta', 'cbt', 'cuckold', 'custom']) {
      it(`accepts caption theme ${theme}`, async () => {
        const s = await newSession(t, owner, { captionTheme: theme === 'custom' ? 'joi' : 'custom' });
        expect((await patch(s.id, { captionTheme: theme }).expect(200)).body.captionTheme).to.equal(theme);
      });
    }
    it('rejects an unknown caption theme', async () => {
      const s = await newSession(t, owner);
      await rejected(s.id, { captionTheme: 'gothic' }, /captionTheme must be one of/);
    });
  });

  describe('subreddits', () => {
    it('normalises a comma string and an array: trim, lowercase, r/ prefix, duplicates, empties', async () => {
      const s = await newSession(t, owner);
      const a = await patch(s.id, { subreddits: ' r/EarthPorn ,pics,, /r/Pics , Space_Porn ' }).expect(200);
      expect(a.body.subreddits).to.deep.equal(['earthporn', 'pics', 'space_porn']);
      const b = await patch(s.id, { subreddits: ['R/Art', 'art', 'itookapicture'] }).expect(200);
      expect(b.body.subreddits).to.deep.equal(['art', 'itookapicture']);
    });
    it('rejects bad names, naming them', async () => {
      const s = await newSession(t, owner);
      await rejected(s.id, { subreddits: 'pics, bad-name!, x' }, /"bad-name!", "x"/);
      await rejected(s.id, { subreddits: ['a'.repeat(22)] }, /aaaaaaaaaaaaaaaaaaaaaa/);
    });
    it('rejects more than 25 and accepts 25', async () => {
      const s = await newSession(t, owner);
      const names = Array.from({ length: 26 }, (_, i) => `sub_${i}`);
      await rejected(s.id, { subreddits: names.join(',') }, /26 subreddits; at most 25/);
      expect((await patch(s.id, { subreddits: names.slice(0, 25) }).expect(200)).body.subreddits).to.have.length(25);
    });
    it('rejects a number and an array of numbers', async () => {
      const s = await newSession(t, owner);
      await rejected(s.id, { subreddits: 5 }, /subreddits must be a comma-separated string or an array/);
      await rejected(s.id, { subreddits: [1, 2] }, /subreddits/);
    });
  });

  describe('categories', () => {
    it('a category id sets it manually; null goes back to the default; an unknown id is a 400', async () => {
      const categories = (await t.http().get('/api/categories').expect(200)).body as { id: number; isDefault: boolean }[];
      const def = categories.find((c) => c.isDefault)!;
      const other = categories.find((c) => !c.isDefault)!;
      const s = await newSession(t, owner);
      expect(s).to.include({ categoryId: def.id, categorySource: 'default' });
      expect((await patch(s.id, { categoryId: other.id }).expect(200)).body).to.include({ categoryId: other.id, categorySource: 'manual' });
      expect((await patch(s.id, { categoryId: null }).expect(200)).body).to.include({ categoryId: def.id, categorySource: 'default' });
      await rejected(s.id, { categoryId: 999_999 }, /categoryId refers to no category/);
      await rejected(s.id, { categoryId: '2' }, /categoryId must be integer/);
      await rejected(s.id, { categoryId: 99_999_999_999 }, /categoryId/);
    });
  });

  describe('fields and types', () => {
    it('rejects unknown fields and read-only fields, naming each', async () => {
      const s = await newSession(t, owner);
      const body = await rejected(s.id, { bogus: 1 }, /bogus is not an allowed field/);
      expect((body.details as { fields: unknown[] }).fields).to.deep.equal([{ field: 'bogus', pointer: '/bogus', reason: 'is not an allowed field' }]);
      for (const field of ['id', 'userId', 'createdAt', 'updatedAt', 'isImported']) {
        await rejected(s.id, { [field]: field === 'isImported' ? true : 'x' }, new RegExp(`${field} is read-only`));
      }
    });
    it('rejects wrong types, listing every failing field with its pointer', async () => {
      const s = await newSession(t, owner);
      const body = await rejected(s.id, { intervalMin: '4', isPublic: 1, aiPrompt: 5, title: ['t'] }, /must be/);
      const pointers = (body.details as { fields: { pointer: string }[] }).fields.map((f) => f.pointer).sort();
      expect(pointers).to.deep.equal(['/aiPrompt', '/intervalMin', '/isPublic', '/title']);
    });
    it('accepts booleans and aiPrompt up to 2,000 chars or null', async () => {
      const s = await newSession(t, owner);
      const res = await patch(s.id, { isPublic: true, isFavorite: true, isManualMode: true, aiPrompt: 'p'.repeat(2000) }).expect(200);
      expect(res.body).to.include({ isPublic: true, isFavorite: true, isManualMode: true });
      expect((await patch(s.id, { aiPrompt: null }).expect(200)).body.aiPrompt).to.equal(null);
      await rejected(s.id, { aiPrompt: 'p'.repeat(2001) }, /aiPrompt/);
    });
    it('rejects a thumbnail that is not an http(s) URL', async () => {
      const s = await newSession(t, owner);
      await rejected(s.id, { thumbnail: 'javascript:alert(1)' }, /thumbnail must be an http\(s\) URL/);
      await rejected(s.id, { thumbnail: 'not a url' }, /thumbnail/);
      await rejected(s.id, { thumbnail: null }, /thumbnail/);
    });
  });

  describe('imported sessions', () => {
    it('keep subreddits, aiPrompt and captionTheme, naming the field; other fields stay editable', async () => {
      const s = await newSession(t, owner);
      await t.knex('sessions').where({ id: s.id }).update({ is_imported: true, import_source: 'reference' });
      for (const [field, value] of [['subreddits', 'other'], ['aiPrompt', 'x'], ['captionTheme', 'beta']] as const) {
        const body = await rejected(s.id, { [field]: value }, new RegExp(`${field} cannot be changed on an imported session`));
        expect(body.code).to.equal('IMPORTED_SESSION_LOCKED');
      }
      const ok = await patch(s.id, { title: 'Still editable', isFavorite: true }).expect(200);
      expect(ok.body).to.include({ title: 'Still editable', isFavorite: true, isImported: true, importSource: 'reference' });
    });
  });

  describe('community sharing', () => {
    it('share writes one pending snapshot and one job; repeating changes nothing; unshare removes it and queues the purge', async () => {
      const s = await newSession(t, owner);
      const mark = await maxOutboxId(t.knex);
      const shared = await patch(s.id, { shareToCommunity: true }).expect(200);
      expect(shared.body.shareToCommunity).to.equal(true);
      const snapshots = await t.knex('community_snapshots').where({ session_id: s.id });
      expect(snapshots).to.have.length(1);
      expect(snapshots[0]).to.include({ status: 'pending', title: 'My session' });
      expect(shared.body.communitySnapshot).to.deep.equal({ id: snapshots[0].id, status: 'pending' });
      const jobs = await outboxSince(t.knex, s.id, mark);
      expect(jobs.map((j) => [j.queue, j.job_name, j.payload])).to.deep.equal([['snapshots', 'create', { snapshotId: snapshots[0].id, sessionId: s.id }]]);

      const before = await snapshotState(t.knex, s.id);
      const again = await patch(s.id, { shareToCommunity: true }).expect(200);
      expect(again.headers.etag).to.equal(shared.headers.etag);
      expect(await snapshotState(t.knex, s.id)).to.equal(before);

      const mark2 = await maxOutboxId(t.knex);
      const unshared = await patch(s.id, { shareToCommunity: false }).expect(200);
      expect(unshared.body.communitySnapshot).to.equal(null);
      expect(await t.knex('community_snapshots').where({ session_id: s.id })).to.have.length(0);
      const purge = await t.knex('job_outbox').where('id', '>', mark2).andWhere({ queue: 'snapshots', job_name: 'purge' });
      expect(purge.map((p) => p.payload)).to.deep.equal([{ snapshotId: snapshots[0].id }]);
    });

    it('DELETE of a shared session removes session, media and snapshot rows and queues the purge', async () => {
      const s = await newSession(t, owner, { shareToCommunity: true });
      await t.knex('session_media').insert({ session_id: s.id, media_url: 'https://i.example.test/a.jpg', type: 'image', order: 0 });
      const snapshot = await t.knex('community_snapshots').where({ session_id: s.id }).first();
      const mark = await maxOutboxId(t.knex);
      await t.http().delete(`/api/sessions/${s.id}`).set('Cookie', owner.cookie).expect(204);
      expect(await t.knex('sessions').where({ id: s.id })).to.have.length(0);
      expect(await t.knex('session_media').where({ session_id: s.id })).to.have.length(0);
      expect(await t.knex('community_snapshots').where({ id: snapshot.id })).to.have.length(0);
      const rows = await t.knex('job_outbox').where('id', '>', mark).orderBy('id');
      expect(rows.map((r) => [r.queue, r.job_name])).to.deep.include(['snapshots', 'purge']);
      expect(rows.find((r) => r.job_name === 'purge' && r.queue === 'snapshots')!.payload).to.deep.equal({ snapshotId: snapshot.id });
      await t.http().get(`/api/sessions/${s.id}`).set('Cookie', owner.cookie).expect(404);
    });
  });

  describe('thumbnails', () => {
    it('"" and a subreddits change without thumbnail each queue one generation job with a higher generation; a URL queues none', async () => {
      const s = await newSession(t, owner);
      const gen = async (): Promise<number> => (await t.knex('sessions').where({ id: s.id }).first()).thumbnail_generation as number;
      const g0 = await gen();

      let mark = await maxOutboxId(t.knex);
      await patch(s.id, { thumbnail: '' }).expect(200);
      let rows = await outboxSince(t.knex, s.id, mark);
      expect(rows.map((r) => [r.queue, r.job_name, r.payload.generation])).to.deep.equal([['thumbnails', 'generate', g0 + 1]]);

      mark = await maxOutboxId(t.knex);
      await patch(s.id, { subreddits: 'art' }).expect(200);
      rows = await outboxSince(t.knex, s.id, mark);
      expect(rows.map((r) => [r.queue, r.job_name])).to.deep.equal([['media', 'sync'], ['thumbnails', 'generate']]);
      expect(rows[1]!.payload.generation).to.equal(g0 + 2);

      mark = await maxOutboxId(t.knex);
      const custom = await patch(s.id, { thumbnail: 'https://cdn.example.test/mine.png' }).expect(200);
      expect(custom.body.thumbnail).to.equal('https://cdn.example.test/mine.png');
      expect(await outboxSince(t.knex, s.id, mark)).to.have.length(0);
      expect(await gen()).to.equal(g0 + 3);
    });
  });

  describe('atomicity', () => {
    it('a PATCH that fails after its first write leaves session, snapshot and outbox untouched', async () => {
      const s = await newSession(t, owner);
      // A real fault inside the transaction: the outbox insert fails after the session UPDATE ran.
      await t.knex.raw(`
        CREATE OR REPLACE FUNCTION test_fail_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF (NEW.payload->>'sessionId')::int = ${s.id} THEN RAISE EXCEPTION 'injected failure'; END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER test_fail_outbox BEFORE INSERT ON job_outbox FOR EACH ROW EXECUTE FUNCTION test_fail_outbox();`);
      try {
        const before = await snapshotState(t.knex, s.id);
        const res = await patch(s.id, { title: 'Never stored', subreddits: 'art', shareToCommunity: true });
        expect(res.status).to.equal(500);
        expect(res.body).to.include({ code: 'INTERNAL_ERROR' });
        expect(await snapshotState(t.knex, s.id)).to.equal(before);
      } finally {
        await t.knex.raw('DROP TRIGGER test_fail_outbox ON job_outbox; DROP FUNCTION test_fail_outbox();');
      }
    });
  });

  describe('concurrency', () => {
    it('concurrent PATCHes of different fields all land, one version each', async () => {
      const s = await newSession(t, owner);
      const v0 = (await t.knex('sessions').where({ id: s.id }).first()).version as number;
      const edits: Record<string, unknown>[] = [
        { title: 'Concurrent' },
        { intervalMin: 2 },
        { intervalMax: 30 },
        { transition: 'flip' },
        { aiPrompt: 'prompt' },
        { captionTheme: 'beta' },
        { isPublic: true },
        { isFavorite: true },
      ];
      const results = await Promise.all(edits.map((e) => patch(s.id, e)));
      expect(results.map((r) => r.status)).to.deep.equal(edits.map(() => 200));
      const row = await t.knex('sessions').where({ id: s.id }).first();
      expect(row).to.include({ title: 'Concurrent', interval_min: 2, interval_max: 30, transition: 'flip', ai_prompt: 'prompt', caption_theme: 'beta', is_public: true, is_favorite: true });
      expect(row.version).to.equal(v0 + edits.length);
    });

    it('honours If-Match: a stale ETag gets 412 and changes nothing; the current one succeeds', async () => {
      const s = await newSession(t, owner);
      const first = await patch(s.id, { title: 'One' }).expect(200);
      const stale = '"s' + s.id + '-v1"';
      const before = await snapshotState(t.knex, s.id);
      const res = await t.http().patch(`/api/sessions/${s.id}`).set('Cookie', owner.cookie).set('If-Match', stale).send({ title: 'Lost update' }).expect(412);
      expect(res.body).to.include({ code: 'PRECONDITION_FAILED' });
      expect(await snapshotState(t.knex, s.id)).to.equal(before);
      const ok = await t.http().patch(`/api/sessions/${s.id}`).set('Cookie', owner.cookie).set('If-Match', first.headers.etag as string).send({ title: 'Two' }).expect(200);
      expect(ok.body.title).to.equal('Two');
    });
  });

  describe('requests that are not right', () => {
    it('401 without a cookie, 404 for another user\'s session exactly like a missing one', async () => {
      const s = await newSession(t, owner);
      const other = await registerUser(t);
      await t.http().patch(`/api/sessions/${s.id}`).send({ title: 'x' }).expect(401);
      const theirs = await patch(s.id, { title: 'x' }, other).expect(404);
      const missing = await patch(2_000_000_000, { title: 'x' }, other).expect(404);
      expect(theirs.body.code).to.equal('NOT_FOUND');
      expect(theirs.body.message.replace(String(s.id), 'N')).to.equal(missing.body.message.replace('2000000000', 'N'));
      expect((await t.knex('sessions').where({ id: s.id }).first()).title).to.equal('My session');
    });
    it('413 for an oversized body, 415 for a non-JSON body, 400 for malformed JSON and non-object bodies', async () => {
      const s = await newSession(t, owner);
      const before = await snapshotState(t.knex, s.id);
      const big = await t.http().patch(`/api/sessions/${s.id}`).set('Cookie', owner.cookie).set('Content-Type', 'application/json').send(JSON.stringify({ aiPrompt: 'x'.repeat(200_000) }));
      expect(big.status).to.equal(413);
      expect(big.body).to.include({ code: 'PAYLOAD_TOO_LARGE' });
      const text = await t.http().patch(`/api/sessions/${s.id}`).set('Cookie', owner.cookie).set('Content-Type', 'text/plain').send('title=x');
      expect(text.status).to.equal(415);
      const malformed = await t.http().patch(`/api/sessions/${s.id}`).set('Cookie', owner.cookie).set('Content-Type', 'application/json').send('{"title": ');
      expect(malformed.status).to.equal(400);
      expect(malformed.body.message).to.match(/Malformed JSON/);
      for (const raw of ['[]', 'null', '"title"', '42']) {
        const res = await t.http().patch(`/api/sessions/${s.id}`).set('Cookie', owner.cookie).set('Content-Type', 'application/json').send(raw);
        expect(res.status, raw).to.equal(400);
        expect(res.body.message).to.match(/JSON object/);
      }
      await t.http().patch('/api/sessions/abc').set('Cookie', owner.cookie).send({ title: 'x' }).expect(400);
      expect(await snapshotState(t.knex, s.id)).to.equal(before);
    });
    it('logout revokes: the old cookie gets 401 on the sessions API', async () => {
      const u = await registerUser(t);
      const login = await t.http().post('/api/auth/login').send({ email: u.email, password: u.password }).expect(200);
      const cookie = sessionCookie(login.headers['set-cookie']);
      await t.http().get('/api/sessions').set('Cookie', cookie).expect(200);
      await t.http().post('/api/auth/logout').set('Cookie', cookie).expect(200);
      await t.http().get('/api/sessions').set('Cookie', cookie).expect(401);
      await t.http().patch('/api/sessions/1').set('Cookie', cookie).send({ title: 'x' }).expect(401);
    });
  });
});
