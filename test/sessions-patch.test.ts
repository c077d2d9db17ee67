import { expect } from 'chai';
import { createTestApp, registerUser, testConfig } from './helpers/app.js';
import { categories, Client, expectEnvelope, expectUnchanged, failingPointers, jobsAfter, maxOutboxId, sessionRow, type Body } from './helpers/session-state.js';

/** The keys of the reference API's PATCH response and the JSON types each may have. */
const REFERENCE_KEYS: Record<string, string[]> = {
  id: ['integer'],
  title: ['string'],
  userId: ['string'],
  subreddits: ['string[]'],
  categoryId: ['integer'],
  intervalMin: ['integer'],
  intervalMax: ['integer'],
  transition: ['string'],
  thumbnail: ['string', 'null'],
  captionTheme: ['string'],
  isPublic: ['boolean'],
  shareToCommunity: ['boolean'],
  isFavorite: ['boolean'],
  isManualMode: ['boolean'],
  isImported: ['boolean'],
  createdAt: ['timestamp'],
  updatedAt: ['timestamp'],
};

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.every((x) => typeof x === 'string') ? 'string[]' : 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(v)) return 'timestamp';
  return typeof v;
}

const TRANSITIONS = ['fade', 'slide', 'zoom', 'flip', 'none'];
/** The caption themes the test app is configured with (config.ts states the default list). */
const THEMES = testConfig().captionThemes;

describe('PATCH /api/sessions/:id: the reference example and every rule', () => {
  const t = createTestApp();
  let c: Client;

  before(async () => {
    c = new Client(t, await registerUser(t));
  });

  /** A rejected PATCH: the status and code, a message matching `message`, and no row or job written. */
  async function rejected(id: number, body: unknown, message: RegExp, code = 'VALIDATION_ERROR'): Promise<Body> {
    return expectUnchanged(t.knex, id, async () => {
      const res = await c.patch(id, body);
      const envelope = expectEnvelope(res, 400, code);
      expect(envelope.error).to.equal('Validation Error');
      expect(envelope.message).to.match(message);
      return envelope;
    });
  }

  it('applies the reference example sent with only the connect.sid cookie, keeping every other field', async () => {
    const cats = await categories(t);
    const created = await c.create({
      subreddits: 'pics, EarthPorn',
      categoryId: cats.other.id,
      transition: 'zoom',
      captionTheme: 'beta',
      aiPrompt: 'a prompt',
      thumbnail: 'https://cdn.example.test/t.png',
      isPublic: true,
      isFavorite: true,
      isManualMode: true,
    });
    const before = await sessionRow(t.knex, created.id);
    const mark = await maxOutboxId(t.knex);

    // Exactly the reference client's request: one Cookie header, a Content-Type, a JSON text.
    const res = await t
      .http()
      .patch(`/api/sessions/${created.id}`)
      .set('Cookie', c.user.cookie)
      .set('Content-Type', 'application/json')
      .send('{"title": "Updated Session Title", "intervalMin": 4, "intervalMax": 12}');
    expect(res.status, res.text).to.equal(200);
    for (const [key, types] of Object.entries(REFERENCE_KEYS)) {
      expect(res.body, key).to.have.property(key);
      expect(types, `${key}: ${JSON.stringify(res.body[key])}`).to.include(jsonType(res.body[key]));
    }
    expect(res.body).to.include({ id: created.id, userId: c.user.user.id, title: 'Updated Session Title', intervalMin: 4, intervalMax: 12 });

    // Untouched fields answer as they did, and are stored as they were.
    const untouched = Object.keys(created).filter((k) => !['title', 'intervalMin', 'intervalMax', 'updatedAt'].includes(k));
    for (const key of untouched) expect(res.body[key], key).to.deep.equal(created[key]);
    expect(res.body).to.include({ transition: 'zoom', captionTheme: 'beta', aiPrompt: 'a prompt', thumbnail: 'https://cdn.example.test/t.png', categoryId: cats.other.id });
    expect(res.body.subreddits).to.deep.equal(['pics', 'earthporn']);

    const after = await sessionRow(t.knex, created.id);
    const { title, interval_min: min, interval_max: max, version, updated_at: updatedAt, ...rest } = after;
    const { title: _t, interval_min: _a, interval_max: _b, version: v0, updated_at: u0, ...restBefore } = before;
    expect(rest).to.deep.equal(restBefore);
    expect([title, min, max, version]).to.deep.equal(['Updated Session Title', 4, 12, v0 + 1]);
    expect(updatedAt.getTime()).to.be.greaterThan(u0.getTime());
    expect(Date.parse(res.body.updatedAt as string)).to.equal(updatedAt.getTime());
    expect(Date.parse(res.body.updatedAt as string)).to.be.greaterThan(Date.parse(created.updatedAt as string));

    expect(res.headers.etag).to.equal(`"s${created.id}-v${v0 + 1}"`);
    expect(await jobsAfter(t.knex, mark), 'title and intervals need no job').to.deep.equal([]);
  });

  it('PATCHes changing long, overlapping sets of fields each apply exactly their own fields', async () => {
    // Column lists sharing their first 37 characters: a statement name cut at PostgreSQL's 63
    // bytes would make these two updates one prepared statement.
    const created = await c.create({ subreddits: 'pics' });
    for (let i = 0; i < 4; i++) {
      const a = await c.patchOk(created.id, { title: `A${i}`, subreddits: `a${i}x`, transition: 'zoom', aiPrompt: `a ${i}` });
      expect(a).to.include({ title: `A${i}`, transition: 'zoom', isPublic: i > 0 });
      expect(a.subreddits).to.deep.equal([`a${i}x`]);
      const b = await c.patchOk(created.id, { title: `B${i}`, subreddits: `b${i}x`, transition: 'flip', aiPrompt: `b ${i}`, isPublic: true });
      expect(b).to.include({ title: `B${i}`, transition: 'flip', isPublic: true });
      expect(b.subreddits).to.deep.equal([`b${i}x`]);
    }
    expect(await sessionRow(t.knex, created.id)).to.include({ title: 'B3', ai_prompt: 'b 3', is_public: true });
  });

  it('a PATCH that changes nothing writes nothing and keeps the ETag', async () => {
    const s = await c.create({ intervalMin: 4 });
    const etag = (await c.get(s.id)).headers.etag as string;
    const res = await expectUnchanged(t.knex, s.id, () => c.patch(s.id, { title: '  My session ', intervalMin: 4, subreddits: 'PICS, r/EarthPorn' }));
    expect(res.status).to.equal(200);
    expect(res.headers.etag).to.equal(etag);
    expect(await expectUnchanged(t.knex, s.id, () => c.patchOk(s.id, {}))).to.include({ id: s.id, title: 'My session' });
  });

  describe('intervals', () => {
    for (const field of ['intervalMin', 'intervalMax'] as const) {
      for (const value of [1, 60]) {
        it(`accepts ${field} ${value}`, async () => {
          const s = await c.create({ intervalMin: 1, intervalMax: 60 });
          const other = field === 'intervalMin' ? { intervalMax: 60 } : { intervalMin: 1 };
          expect(await c.patchOk(s.id, { [field]: value })).to.include({ [field]: value, ...other });
          expect((await sessionRow(t.knex, s.id))[field === 'intervalMin' ? 'interval_min' : 'interval_max']).to.equal(value);
        });
      }
      for (const value of [0, 61]) {
        it(`rejects ${field} ${value}, naming the field`, async () => {
          const s = await c.create({ intervalMin: 1, intervalMax: 60 });
          const body = await rejected(s.id, { [field]: value }, new RegExp(`^${field} must be`));
          expect(failingPointers(body)).to.deep.equal([`/${field}`]);
        });
      }
    }

    it('checks min ≤ max after merging with the stored values, in both directions', async () => {
      const s = await c.create({ intervalMin: 5, intervalMax: 10 });
      let body = await rejected(s.id, { intervalMin: 11 }, /intervalMin must be less than or equal to intervalMax \(11 > 10\)/);
      expect(failingPointers(body)).to.deep.equal(['/intervalMin']);
      body = await rejected(s.id, { intervalMax: 4 }, /intervalMax must be greater than or equal to intervalMin \(4 < 5\)/);
      expect(failingPointers(body)).to.deep.equal(['/intervalMax']);
      await rejected(s.id, { intervalMin: 20, intervalMax: 19 }, /intervalMin/);
      // Each alone would break the stored range; together they form a valid one.
      expect(await c.patchOk(s.id, { intervalMin: 20, intervalMax: 30 })).to.include({ intervalMin: 20, intervalMax: 30 });
      expect(await c.patchOk(s.id, { intervalMax: 20 })).to.include({ intervalMin: 20, intervalMax: 20 });
      expect(await c.patchOk(s.id, { intervalMin: 1, intervalMax: 1 })).to.include({ intervalMin: 1, intervalMax: 1 });
    });
  });

  describe('title', () => {
    it('is trimmed and must be 1-200 characters after that', async () => {
      const s = await c.create();
      for (const bad of ['', ' ', '   \t\n ', '\u00a0\u3000']) await rejected(s.id, { title: bad }, /^title must be 1-200 characters/);
      await rejected(s.id, { title: 'x'.repeat(201) }, /^title must be 1-200 characters after trimming \(got 201\)/);
      expect(await c.patchOk(s.id, { title: '  Padded  ' })).to.include({ title: 'Padded' });
      expect(await c.patchOk(s.id, { title: ` ${'y'.repeat(200)} ` })).to.include({ title: 'y'.repeat(200) });
      expect(await c.patchOk(s.id, { title: 'x' })).to.include({ title: 'x' });
    });

    it('counts characters, not UTF-16 units, as the database does', async () => {
      const s = await c.create();
      expect(await c.patchOk(s.id, { title: '💥'.repeat(200) })).to.include({ title: '💥'.repeat(200) });
      await rejected(s.id, { title: '💥'.repeat(201) }, /title must be 1-200 characters/);
    });
  });

  describe('transition and caption theme', () => {
    for (const transition of TRANSITIONS) {
      it(`accepts transition ${transition}`, async () => {
        const s = await c.create({ transition: transition === 'fade' ? 'none' : 'fade' });
        expect(await c.patchOk(s.id, { transition })).to.include({ transition });
        expect((await sessionRow(t.knex, s.id)).transition).to.equal(transition);
      });
    }
    it('rejects an unknown transition, listing the allowed ones', async () => {
      const s = await c.create();
      for (const bad of ['spin', 'Fade', '']) {
        await rejected(s.id, { transition: bad }, /^transition must be one of: "fade", "slide", "zoom", "flip", "none"$/);
      }
    });
    for (const theme of THEMES) {
      it(`accepts caption theme ${theme}`, async () => {
        const s = await c.create({ captionTheme: theme === 'custom' ? 'joi' : 'custom' });
        expect(await c.patchOk(s.id, { captionTheme: theme })).to.include({ captionTheme: theme });
        expect((await sessionRow(t.knex, s.id)).caption_theme).to.equal(theme);
      });
    }
    it('rejects an unknown caption theme', async () => {
      const s = await c.create();
      await rejected(s.id, { captionTheme: 'gothic' }, new RegExp(`^captionTheme must be one of: ${THEMES.map((theme) => `"${theme}"`).join(', ')}$`));
    });
  });

  describe('subreddits', () => {
    it('normalises a comma-separated string: trim, case, r/ prefix, empties, duplicates', async () => {
      const s = await c.create();
      const body = await c.patchOk(s.id, { subreddits: ' r/EarthPorn ,PICS,, /r/pics , Space_Porn,earthporn ' });
      expect(body.subreddits).to.deep.equal(['earthporn', 'pics', 'space_porn']);
      expect((await sessionRow(t.knex, s.id)).subreddits).to.deep.equal(['earthporn', 'pics', 'space_porn']);
    });

    it('normalises an array the same way', async () => {
      const s = await c.create();
      const body = await c.patchOk(s.id, { subreddits: [' R/Art ', 'art', 'ITookAPicture', 'r/aww, Pics'] });
      expect(body.subreddits).to.deep.equal(['art', 'itookapicture', 'aww', 'pics']);
    });

    it('rejects invalid names, naming each one', async () => {
      const s = await c.create();
      await rejected(s.id, { subreddits: 'pics, bad-name!' }, /^subreddits has invalid subreddit name "bad-name!": each must be 2-21/);
      await rejected(s.id, { subreddits: ['pics', 'x'] }, /"x"/);
      await rejected(s.id, { subreddits: `pics, ${'a'.repeat(22)}` }, new RegExp(`"${'a'.repeat(22)}"`));
      await rejected(s.id, { subreddits: 'r/has space, ok_name, d.ot' }, /names "r\/has space", "d\.ot"/);
    });

    it('allows 25 and rejects 26, counted after de-duplication', async () => {
      const s = await c.create();
      const names = Array.from({ length: 26 }, (_, i) => `sub_${i}`);
      await rejected(s.id, { subreddits: names.join(',') }, /^subreddits has 26 subreddits; at most 25 are allowed$/);
      await rejected(s.id, { subreddits: names }, /at most 25/);
      const body = await c.patchOk(s.id, { subreddits: [...names.slice(0, 25), 'SUB_0', 'r/sub_1'] });
      expect(body.subreddits).to.deep.equal(names.slice(0, 25));
    });
  });

  describe('categoryId', () => {
    it('null resets to the default category; an id sets it manually; an unknown id is a 400', async () => {
      const cats = await categories(t);
      const s = await c.create();
      expect(s).to.include({ categoryId: cats.byDefault.id, categorySource: 'default' });
      expect(await c.patchOk(s.id, { categoryId: cats.other.id })).to.include({ categoryId: cats.other.id, categorySource: 'manual' });
      expect(await sessionRow(t.knex, s.id)).to.include({ category_id: cats.other.id, category_source: 'manual' });
      expect(await c.patchOk(s.id, { categoryId: null })).to.include({ categoryId: cats.byDefault.id, categorySource: 'default' });
      expect(await sessionRow(t.knex, s.id)).to.include({ category_id: cats.byDefault.id, category_source: 'default' });
      // Choosing the default category by id is still the user's choice.
      expect(await c.patchOk(s.id, { categoryId: cats.byDefault.id })).to.include({ categoryId: cats.byDefault.id, categorySource: 'manual' });
      const unknown = Math.max(...cats.all.map((x) => x.id)) + 1000;
      const body = await rejected(s.id, { categoryId: unknown }, new RegExp(`^categoryId refers to no category \\(${unknown}\\)`));
      expect(failingPointers(body)).to.deep.equal(['/categoryId']);
      await rejected(s.id, { categoryId: 0 }, /categoryId/);
    });
  });

  describe('aiPrompt and thumbnail', () => {
    it('aiPrompt takes up to 2,000 characters or null', async () => {
      const s = await c.create();
      expect(await c.patchOk(s.id, { aiPrompt: 'p'.repeat(2000) })).to.include({ aiPrompt: 'p'.repeat(2000) });
      await rejected(s.id, { aiPrompt: 'p'.repeat(2001) }, /^aiPrompt must NOT have more than 2000 characters$/);
      expect(await c.patchOk(s.id, { aiPrompt: null })).to.include({ aiPrompt: null });
      expect((await sessionRow(t.knex, s.id)).ai_prompt).to.equal(null);
    });

    it('thumbnail must be an http(s) URL (or "")', async () => {
      const s = await c.create();
      for (const bad of ['not a url', 'ftp://cdn.example.test/t.png', 'javascript:alert(1)', '/relative.png', 'https://', 'data:image/png;base64,AAAA']) {
        await rejected(s.id, { thumbnail: bad }, /^thumbnail must be an http\(s\) URL/);
      }
      expect(await c.patchOk(s.id, { thumbnail: 'http://cdn.example.test/t.png' })).to.include({ thumbnail: 'http://cdn.example.test/t.png' });
    });
  });

  describe('fields and types', () => {
    it('rejects unknown fields, alone or next to valid ones', async () => {
      const s = await c.create();
      const body = await rejected(s.id, { bogus: 1 }, /^bogus is not an allowed field$/);
      expect(body.details).to.deep.equal({ fields: [{ field: 'bogus', pointer: '/bogus', reason: 'is not an allowed field' }] });
      await rejected(s.id, { title: 'Valid', Title: 'x' }, /Title is not an allowed field/);
      await rejected(s.id, JSON.stringify({ title: 'Valid' }).replace('{', '{"__proto__":{"isPublic":true},'), /__proto__ is not an allowed field/);
    });

    it('rejects every read-only field, even with its current value', async () => {
      const s = await c.create();
      const current: Record<string, unknown> = { id: s.id, userId: s.userId, createdAt: s.createdAt, updatedAt: s.updatedAt, isImported: false, importSource: null, categorySource: 'default', communitySnapshot: null, version: 1 };
      for (const [field, value] of Object.entries(current)) {
        const body = await rejected(s.id, { title: 'Sneaky', [field]: value }, new RegExp(`^${field} is read-only$`));
        expect(failingPointers(body)).to.deep.equal([`/${field}`]);
      }
      await rejected(s.id, { isImported: true }, /isImported is read-only/);
    });

    const WRONG_TYPES: [string, unknown][] = [
      ['title', 5],
      ['title', null],
      ['title', ['t']],
      ['subreddits', 5],
      ['subreddits', null],
      ['subreddits', [1, 2]],
      ['subreddits', { pics: true }],
      ['categoryId', '2'],
      ['categoryId', 1.5],
      ['categoryId', true],
      ['intervalMin', '4'],
      ['intervalMin', 4.5],
      ['intervalMax', null],
      ['intervalMax', '12'],
      ['transition', 1],
      ['aiPrompt', 5],
      ['aiPrompt', ['p']],
      ['captionTheme', null],
      ['thumbnail', null],
      ['thumbnail', 5],
      ['isPublic', 1],
      ['isPublic', 'true'],
      ['shareToCommunity', 0],
      ['isFavorite', null],
      ['isManualMode', 'false'],
    ];
    it(`rejects wrong types (${WRONG_TYPES.length} cases), each naming its field`, async () => {
      const s = await c.create();
      for (const [field, value] of WRONG_TYPES) {
        const body = await rejected(s.id, { [field]: value }, new RegExp(`^${field} `));
        expect(failingPointers(body), `${field}: ${JSON.stringify(value)}`).to.deep.equal([`/${field}`]);
      }
    });

    it('lists every failing field of one body', async () => {
      const s = await c.create();
      const body = await rejected(s.id, { intervalMin: '4', isPublic: 1, aiPrompt: 5, title: ['t'], extra: true }, /must be/);
      expect(failingPointers(body)).to.deep.equal(['/aiPrompt', '/extra', '/intervalMin', '/isPublic', '/title']);
    });
  });

  describe('imported sessions', () => {
    for (const [field, value] of [
      ['subreddits', 'other'],
      ['aiPrompt', 'new prompt'],
      ['aiPrompt', null],
      ['captionTheme', 'beta'],
    ] as const) {
      it(`refuse ${field} = ${JSON.stringify(value)}, naming the field`, async () => {
        const s = await c.create({ aiPrompt: 'imported prompt' });
        await t.knex('sessions').where({ id: s.id }).update({ is_imported: true, import_source: 'reference' });
        const body = await rejected(s.id, { title: 'Also changed', [field]: value }, new RegExp(`^${field} cannot be changed on an imported session$`), 'IMPORTED_SESSION_LOCKED');
        expect(failingPointers(body)).to.deep.equal([`/${field}`]);
      });
    }

    it('name every locked field sent at once', async () => {
      const s = await c.create();
      await t.knex('sessions').where({ id: s.id }).update({ is_imported: true });
      await rejected(s.id, { subreddits: 'x_y', aiPrompt: 'p', captionTheme: 'cbt' }, /^subreddits, aiPrompt, captionTheme cannot be changed/, 'IMPORTED_SESSION_LOCKED');
    });

    it('accept their stored values sent back, as a full-form client sends them', async () => {
      const s = await c.create({ aiPrompt: 'imported prompt', captionTheme: 'beta' });
      await t.knex('sessions').where({ id: s.id }).update({ is_imported: true, import_source: 'reference' });
      const mark = await maxOutboxId(t.knex);
      const body = await c.patchOk(s.id, { title: 'Renamed copy', subreddits: 'r/Pics, EarthPorn', aiPrompt: 'imported prompt', captionTheme: 'beta' });
      expect(body).to.include({ title: 'Renamed copy', aiPrompt: 'imported prompt', captionTheme: 'beta', isImported: true });
      expect(body.subreddits).to.deep.equal(['pics', 'earthporn']);
      expect(await jobsAfter(t.knex, mark)).to.deep.equal([]);
    });

    it('keep every other field editable', async () => {
      const cats = await categories(t);
      const s = await c.create();
      await t.knex('sessions').where({ id: s.id }).update({ is_imported: true, import_source: 'reference' });
      const mark = await maxOutboxId(t.knex);
      const body = await c.patchOk(s.id, {
        title: 'Still editable',
        categoryId: cats.other.id,
        intervalMin: 7,
        intervalMax: 9,
        transition: 'flip',
        thumbnail: '',
        isPublic: true,
        isFavorite: true,
        isManualMode: true,
        shareToCommunity: true,
      });
      expect(body).to.include({ title: 'Still editable', categoryId: cats.other.id, intervalMin: 7, intervalMax: 9, transition: 'flip', isPublic: true, isFavorite: true, isManualMode: true, shareToCommunity: true, isImported: true, importSource: 'reference' });
      expect(body.subreddits).to.deep.equal(['pics', 'earthporn']);
      const snapshot = await t.knex('community_snapshots').where({ session_id: s.id }).first();
      expect(snapshot).to.include({ is_imported: true, title: 'Still editable' });
      expect((await jobsAfter(t.knex, mark)).map(([q, n]) => `${q}/${n}`).sort()).to.deep.equal(['snapshots/create', 'thumbnails/generate']);
    });
  });
});
