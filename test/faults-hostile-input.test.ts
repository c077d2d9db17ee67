import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { createTestApp, registerUser, testConfig, type TestApp, type TestUser } from './helpers/app.js';
import { ownTestDatabase } from './helpers/database.js';
import { createSession } from './helpers/flows.js';

/**
 * Thousands of generated and mutated PATCH bodies against the real app (in process, for speed):
 * never a 5xx, the database's invariants hold afterwards, and outbox rows exist exactly for the
 * accepted bodies that needed a job. The generator is seeded (FAULTS_SEED) so a failure reproduces.
 */

const SEED = Number(process.env.FAULTS_SEED ?? 20261127);
const REQUESTS = 5_000;
const LANES = 4;

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;
const pick = <T>(r: Rng, list: readonly T[]): T => list[Math.floor(r() * list.length)]!;
const chance = (r: Rng, p: number): boolean => r() < p;
const j = (v: unknown): string => JSON.stringify(v);

const FIELDS = ['title', 'subreddits', 'categoryId', 'intervalMin', 'intervalMax', 'transition', 'aiPrompt', 'captionTheme', 'thumbnail', 'isPublic', 'shareToCommunity', 'isFavorite', 'isManualMode'] as const;
type Field = (typeof FIELDS)[number];
/** The caption themes the test app is configured with (config.ts states the default list). */
const THEMES = testConfig().captionThemes;

// Raw JSON values, written as text so they can be what JSON.stringify never writes (1e400, -0,
// 2^53 + 1, lone surrogates, NUL).
const WRONG_TYPES = ['null', 'true', 'false', '0', '-1', '1.5', '[]', '{}', '"x"', '""', '[1,2]', '["a"]', '{"a":1}', '{"$gt":""}', '[null]', '[[["x"]]]'];
const NUMBERS = ['0', '1', '2', '59', '60', '61', '-1', '-0', '1.0', '1.5', '59.999999', '60.0000001', '1e1', '6e1', '6.1e1', '1E0', '0.1e1', '1e400', '-1e400', '1e-400', '2147483647', '2147483648', '-2147483648', '9007199254740993', '123456789012345678901234567890', '4294967296'];
const NAN_LIKE = ['"NaN"', '"Infinity"', '"-Infinity"', '"1e3"', '"0x10"', '"10"', '"  5 "', '"true"', '"null"', '"undefined"', '"[object Object]"', '"1,5"'];
const SQL_LIKE = ["'; DROP TABLE sessions; --", '" OR "1"="1', '1; SELECT pg_sleep(10)', '$$; DELETE FROM users; $$', "' || (SELECT password_hash FROM users LIMIT 1) || '", '%\' OR 1=1 --', '?', ':title', '${title}', '\\x00', "E'\\\\x41'", 'null', 'undefined', '__proto__'];
const UNICODE = [
  '💥'.repeat(50),
  '💥'.repeat(150),
  '\u202eevil\u202c',
  'a\u200db\u200c',
  'e\u0301'.repeat(120),
  '\ud800',
  'x\udfffy',
  'a\u0000b',
  '\u0000',
  '\u0001\u001f\u007f',
  '\ufeffbom',
  'line\u2028sep\u2029',
  'ＰＩＣＳ',
  'İSTANBUL',
  'ß',
  '\u00a0\u2003\u3000',
  '  padded  ',
  '\t\n\r',
  '𝕳𝖊𝖑𝖑𝖔',
  'مرحبا',
  '日本語のタイトル',
];
const BAD_KEYS = ['id', 'userId', 'createdAt', 'updatedAt', 'isImported', 'importSource', 'categorySource', 'communitySnapshot', 'version', 'media', 'user_id', '__proto__', 'constructor', 'prototype', '', ' title', 'Title', 'title\u0000', 'thumbnail_source', 'role', 'isAdmin', '$where'];

function longString(r: Rng): string {
  const n = pick(r, [199, 200, 201, 1000, 1001, 2000, 2001, 2048, 2049, 5000, 5001, 20_000, 90_000]);
  return pick(r, ['x', 'é', '💥', ' ', 'a,']).repeat(n).slice(0, n);
}

function hostileValue(r: Rng): string {
  switch (Math.floor(r() * 7)) {
    case 0:
      return pick(r, WRONG_TYPES);
    case 1:
      return pick(r, NUMBERS);
    case 2:
      return pick(r, NAN_LIKE);
    case 3:
      return j(pick(r, SQL_LIKE));
    case 4:
      return j(pick(r, UNICODE));
    case 5:
      return j(longString(r));
    default: {
      const depth = pick(r, [2, 10, 100, 1000]);
      return chance(r, 0.5) ? '['.repeat(depth) + '"x"' + ']'.repeat(depth) : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
    }
  }
}

/** Values the API accepts (mostly) for each field, with their edge cases. */
function plausibleValue(r: Rng, field: Field, categoryIds: number[]): string {
  switch (field) {
    case 'title':
      return j(pick(r, ['Evening', '  Trimmed title  ', 'x', 'y'.repeat(200), ` ${'z'.repeat(200)} `, 'z'.repeat(201), ' ', '', ...SQL_LIKE, ...UNICODE]));
    case 'subreddits': {
      const names = ['pics', 'EarthPorn', 'r/aww', '/r/funny', 'R/Space', 'a_b', 'ab', 'x'.repeat(21), 'x'.repeat(22), 'a', 'no-dash', 'ok_1', 'pics', ' spaced '];
      const list = Array.from({ length: Math.floor(r() * 4) }, () => pick(r, names));
      if (chance(r, 0.05)) return j(Array.from({ length: 26 }, (_, i) => `sub${i}`).join(','));
      if (chance(r, 0.05)) return j(Array.from({ length: 25 }, (_, i) => `sub${i}`));
      if (chance(r, 0.05)) return j(',,, ,');
      // The schema's own bounds: 200 items of up to 200 characters, a string of up to 5,000.
      if (chance(r, 0.05)) return j(pick(r, [Array(200).fill('ab'), Array(201).fill('ab'), ['c'.repeat(200)], ['c'.repeat(201)], 'ab,'.repeat(1666) + 'ab', 'ab,'.repeat(1667)]));
      return chance(r, 0.5) ? j(list.join(pick(r, [',', ', ', ' , ']))) : j(list);
    }
    case 'categoryId':
      return pick(r, [...categoryIds.map(String), ...categoryIds.map(String), 'null', '0', '999999', '2147483647', '2147483648', `"${categoryIds[0]}"`]);
    case 'intervalMin':
    case 'intervalMax':
      return String(pick(r, [1, 2, 3, 5, 10, 30, 59, 60, 0, 61]));
    case 'transition':
      return j(pick(r, ['fade', 'slide', 'zoom', 'flip', 'none', 'FADE', 'dissolve', '']));
    case 'aiPrompt':
      return pick(r, ['null', j('a calm voice'), j('p'.repeat(2000)), j('p'.repeat(2001)), j('💥'.repeat(2000)), j(''), j(pick(r, SQL_LIKE)), j(pick(r, UNICODE))]);
    case 'captionTheme':
      return j(pick(r, [...THEMES, 'JOI', 'other', '']));
    case 'thumbnail':
      return j(
        pick(r, [
          '',
          '',
          'https://cdn.example.test/a.png',
          ' https://cdn.example.test/b.png ',
          'HTTPS://CDN.EXAMPLE.TEST/C.PNG',
          'http://[::1]/x.png',
          `https://cdn.example.test/${'a'.repeat(2020)}`,
          `https://cdn.example.test/${'a'.repeat(2040)}`,
          'javascript:alert(1)',
          'data:image/png;base64,AAAA',
          'ftp://cdn.example.test/x.png',
          'http://',
          '//cdn.example.test/x.png',
          'not a url',
          ' ',
          'http://cdn.example.test/a\u0000b.png',
          'https://cdn.example.test/\u202e.png',
        ]),
      );
    default:
      return pick(r, ['true', 'false', 'true', 'false', '"true"', '1', '0', 'null']);
  }
}

interface Request {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** The session a PATCH targets (undefined for odd paths). */
  session?: number;
}

function generate(r: Rng, sessionId: number, ctx: { categoryIds: number[]; foreign: number; missing: number }): Request {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  let path = `/api/sessions/${sessionId}`;
  let target: number | undefined = sessionId;
  let body: string;
  const mode = r();
  if (mode < 0.55) {
    // An object of some fields, plausible or hostile, sometimes with a bad key or a duplicate key.
    const fields = Array.from({ length: 1 + Math.floor(r() * 4) }, () => pick(r, FIELDS));
    const pairs: [string, string][] = fields.map((f) => [f, chance(r, 0.25) ? hostileValue(r) : plausibleValue(r, f, ctx.categoryIds)]);
    if (chance(r, 0.1)) pairs.push([pick(r, BAD_KEYS), chance(r, 0.5) ? hostileValue(r) : '{"isAdmin":true,"role":"admin"}']);
    if (chance(r, 0.1) && pairs.length > 0) {
      const [key] = pick(r, pairs);
      pairs.push([key, chance(r, 0.5) ? hostileValue(r) : plausibleValue(r, pick(r, FIELDS), ctx.categoryIds)]);
    }
    body = `{${pairs.map(([k, v]) => `${j(k)}:${v}`).join(',')}}`;
  } else if (mode < 0.8) {
    // Only plausible values: most of these are accepted, so the outbox and invariants get exercised.
    const fields = Array.from({ length: 1 + Math.floor(r() * 3) }, () => pick(r, FIELDS));
    const pairs = fields.map((f) => [f, plausibleValue(r, f, ctx.categoryIds)] as const);
    body = `{${pairs.map(([k, v]) => `${j(k)}:${v}`).join(',')}}`;
  } else if (mode < 0.85) {
    // Not an object at all: arrays where the object belongs, scalars, nesting.
    body = pick(r, ['[]', '[{"title":"x"}]', '"title"', '42', 'null', 'true', '[[[[[]]]]]', '{"title":["x"]}', '[' + '{"isFavorite":true},'.repeat(100) + '{}]', '['.repeat(30_000) + ']'.repeat(30_000), '{"a":'.repeat(15_000) + '1' + '}'.repeat(15_000)]);
  } else if (mode < 0.9) {
    // Not JSON, or not quite.
    body = pick(r, ['{"title":"x"', '{"title":"x",}', "{'title':'x'}", '{"intervalMin":NaN}', '{"intervalMin":Infinity}', '{title:"x"}', '{"title":"x"} trailing', '\ufeff{"title":"x"}', '/* c */{"title":"x"}', ' ', '{"title":"\\ud800"}', '{"title":"\\u0000"}', '{"a":"\\x41"}', '{"title":"x"}{"title":"y"}', '\u0000']);
  } else if (mode < 0.93) {
    // Bodies over the limit, declared and chunked.
    body = j({ title: 'x', aiPrompt: 'p'.repeat(pick(r, [102_400, 200_000, 1_000_000])) });
    if (chance(r, 0.5)) headers['transfer-encoding'] = 'chunked';
  } else if (mode < 0.96) {
    body = j({ title: 'Typed wrong' });
    const type = pick(r, ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', '', 'application/json; charset=utf-16', 'application/merge-patch+json', 'APPLICATION/JSON']);
    if (type === '') delete headers['content-type'];
    else headers['content-type'] = type;
  } else {
    // Somewhere else: someone else's session, a missing one, ids that are not ids.
    body = j({ title: 'Not yours', isFavorite: true, shareToCommunity: true });
    target = undefined;
    path = `/api/sessions/${pick(r, [String(ctx.foreign), String(ctx.missing), '0', '-1', '1.5', '1e3', '99999999999', 'abc', '%00', '%E0%A4%A', '1%2F2', `${sessionId}%20`, `${sessionId}/x`, ''])}`;
  }
  if (chance(r, 0.05)) headers['if-match'] = pick(r, ['*', '"stale"', 'W/"s1-v1"', '', '"' + 'x'.repeat(500) + '"', `"s${sessionId}-v1", *`]);
  return { method: 'PATCH', path, headers, body, ...(target !== undefined ? { session: target } : {}) };
}

interface ApiSession {
  id: number;
  subreddits: string[];
  thumbnail: string | null;
  shareToCommunity: boolean;
  [k: string]: unknown;
}

/** The jobs an accepted PATCH needs, from what the session was, what was asked and what it became. */
function expectedJobs(before: ApiSession, body: Record<string, unknown>, after: ApiSession): number {
  const subredditsChanged = j(before.subreddits) !== j(after.subreddits);
  const thumbnailGiven = typeof body.thumbnail === 'string' && body.thumbnail !== '';
  // No worker runs here, so a stored thumbnail is always a custom one, and a custom one survives new subreddits.
  const automatic = before.thumbnail === null;
  const thumbnail = body.thumbnail === '' || (subredditsChanged && after.subreddits.length > 0 && !thumbnailGiven && automatic);
  const share = before.shareToCommunity !== after.shareToCommunity;
  return Number(subredditsChanged) + Number(thumbnail) + Number(share);
}

describe('faults: hostile PATCH bodies', function () {
  this.timeout(120_000);
  const db = ownTestDatabase({ poolMax: 10, applicationName: 'showrunner-test-fuzz' });
  let t: TestApp;
  let server: http.Server;
  let agent: http.Agent;
  let port: number;
  let owner: TestUser;
  let stranger: TestUser;
  /** Outbox rows each request's transaction committed, reported by the app's after-COMMIT hook. */
  const perRequest = new AsyncLocalStorage<{ outboxIds: number[] }>();

  before(async () => {
    t = createTestApp({ knex: db.knex, deps: { afterCommit: (rows) => perRequest.getStore()?.outboxIds.push(...rows.map((r) => r.id)) } });
    const callback = t.app.callback();
    server = http.createServer((req, res) => {
      const store = stores.get(String(req.headers['x-fuzz-request']));
      if (store) perRequest.run(store, () => void callback(req, res));
      else void callback(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    agent = new http.Agent({ keepAlive: true, maxSockets: LANES });
    owner = await registerUser(t);
    stranger = await registerUser(t);
  });
  after(async () => {
    agent?.destroy();
    await new Promise((resolve) => server?.close(resolve));
  });

  const stores = new Map<string, { outboxIds: number[] }>();

  function send(req: Request, id: string): Promise<{ status: number; text: string; headers: http.IncomingHttpHeaders }> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { ...req.headers, cookie: owner.cookie, 'x-fuzz-request': id };
      const chunked = headers['transfer-encoding'] === 'chunked';
      if (!chunked) headers['content-length'] = Buffer.byteLength(req.body);
      const r = http.request({ host: '127.0.0.1', port, method: req.method, path: req.path, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
        res.on('error', reject);
      });
      // The server may answer (413) and close before the whole body is written; the answer is what counts.
      r.on('error', (e) => reject(new Error(`${req.path} ${JSON.stringify(req.headers)} ${req.body.length} bytes ${req.body.slice(0, 100)}: ${e.message}`)));
      r.end(req.body);
    });
  }

  it(`${REQUESTS} generated bodies (seed ${SEED}): no 5xx, invariants hold, outbox rows only for accepted bodies that need jobs`, async () => {
    const categoryIds = (await db.knex('categories').orderBy('id').pluck('id')) as number[];
    const foreign = (await createSession(t, stranger, { title: 'Stranger', subreddits: 'pics', thumbnail: 'https://cdn.example.test/s.png' })).id;
    const foreignBefore = await db.knex('sessions').where({ id: foreign }).first();
    // Per lane: two ordinary sessions (one shared, one manual) and one imported (its locked fields refused).
    const laneSessions: number[][] = [];
    for (let lane = 0; lane < LANES; lane++) {
      const a = await createSession(t, owner, { title: `Lane ${lane} a`, subreddits: 'pics, aww' });
      const b = await createSession(t, owner, { title: `Lane ${lane} b`, subreddits: 'space', shareToCommunity: true, isManualMode: true });
      const c = await createSession(t, owner, { title: `Lane ${lane} c`, subreddits: 'funny' });
      await db.knex('sessions').where({ id: c.id }).update({ is_imported: true, import_source: 'reference' });
      laneSessions.push([a.id, b.id, c.id]);
    }
    const missing = Math.max(...laneSessions.flat(), foreign) + 10_000;
    const state = new Map<number, ApiSession>();
    for (const id of laneSessions.flat()) {
      const res = await t.http().get(`/api/sessions/${id}`).set('Cookie', owner.cookie).expect(200);
      state.set(id, res.body.session as ApiSession);
    }
    const outboxBefore = Number((await db.knex('job_outbox').max<{ max: number | null }[]>({ max: 'id' }))[0]!.max ?? 0);

    const statuses = new Map<number, number>();
    const serverErrors: string[] = [];
    const badEnvelopes: string[] = [];
    const jobMismatches: string[] = [];
    const reported: number[] = [];
    let accepted = 0;
    let acceptedWithJobs = 0;

    const lanes = laneSessions.map(async (sessions, lane) => {
      const r = prng(SEED + lane);
      for (let n = 0; n < REQUESTS / LANES; n++) {
        const req = generate(r, pick(r, sessions), { categoryIds, foreign, missing });
        const id = `${lane}-${n}`;
        const store = { outboxIds: [] as number[] };
        stores.set(id, store);
        const res = await send(req, id);
        stores.delete(id);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const label = `seed ${SEED} lane ${lane} #${n}: PATCH ${req.path} ${JSON.stringify(req.headers)} ${req.body.length > 400 ? `${req.body.slice(0, 200)}…${req.body.slice(-150)} (${req.body.length} chars)` : req.body} → ${res.status} ${res.text.slice(0, 300)}`;
        if (res.status >= 500) serverErrors.push(label);
        reported.push(...store.outboxIds);
        if (res.status >= 200 && res.status < 300) {
          accepted += 1;
          const after = JSON.parse(res.text) as ApiSession;
          const before = state.get(req.session!);
          if (!before || after.id !== req.session) {
            jobMismatches.push(`${label}: accepted for a session not its own`);
            continue;
          }
          // The server reads the body as UTF-8 and drops a byte order mark, so the oracle does too.
          const expected = expectedJobs(before, JSON.parse(req.body.replace(/^\uFEFF/, '')) as Record<string, unknown>, after);
          if (store.outboxIds.length !== expected) jobMismatches.push(`${label}: ${store.outboxIds.length} outbox rows, expected ${expected}`);
          if (expected > 0) acceptedWithJobs += 1;
          state.set(after.id, { ...after, etag: res.headers.etag });
        } else {
          let parsed: Record<string, unknown> | undefined;
          try {
            parsed = JSON.parse(res.text) as Record<string, unknown>;
          } catch {
            parsed = undefined;
          }
          if (!parsed || typeof parsed.error !== 'string' || typeof parsed.message !== 'string' || typeof parsed.code !== 'string') badEnvelopes.push(label);
          if (store.outboxIds.length > 0) jobMismatches.push(`${label}: refused but reported outbox rows`);
        }
      }
    });
    await Promise.all(lanes);

    const summary = JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])));
    expect(serverErrors, `${serverErrors.length} server errors (${summary}):\n${serverErrors.slice(0, 10).join('\n')}`).to.deep.equal([]);
    expect(badEnvelopes, badEnvelopes.slice(0, 10).join('\n')).to.deep.equal([]);
    expect(jobMismatches, jobMismatches.slice(0, 10).join('\n')).to.deep.equal([]);
    expect([...statuses.keys()].every((s) => [200, 400, 404, 405, 412, 413, 415].includes(s)), summary).to.equal(true);
    // The generator exercised both sides.
    expect(accepted, summary).to.be.greaterThan(REQUESTS / 10);
    expect(REQUESTS - accepted, summary).to.be.greaterThan(REQUESTS / 2);
    expect(acceptedWithJobs, summary).to.be.greaterThan(100);

    // The outbox holds exactly the rows accepted requests reported, nothing from refused ones.
    const written = (await db.knex('job_outbox').where('id', '>', outboxBefore).orderBy('id').pluck('id')) as number[];
    expect(written).to.deep.equal([...reported].sort((a, b) => a - b));

    // Invariants, as the database sees them (the CHECK constraints and more).
    const violations = await db.knex.raw(
      `SELECT id, title, subreddits, interval_min, interval_max, transition FROM sessions s WHERE NOT (
         interval_min BETWEEN 1 AND 60 AND interval_max BETWEEN 1 AND 60 AND interval_min <= interval_max
         AND char_length(title) BETWEEN 1 AND 200 AND title = btrim(title)
       ) OR cardinality(subreddits) > 25
         OR EXISTS (SELECT 1 FROM unnest(subreddits) n WHERE n !~ '^[a-z0-9_]{2,21}$')
         OR cardinality(subreddits) <> (SELECT count(DISTINCT n) FROM unnest(subreddits) n)
         OR transition NOT IN ('fade', 'slide', 'zoom', 'flip', 'none')
         OR category_source NOT IN ('default', 'manual')
         OR (category_source = 'default' AND category_id <> (SELECT id FROM categories WHERE is_default))
         OR thumbnail_source NOT IN ('auto', 'custom')
         OR (thumbnail_source = 'custom' AND (thumbnail IS NULL OR thumbnail !~* :customUrl))
         OR (thumbnail IS NOT NULL AND thumbnail !~* :anyUrl)
         OR caption_theme <> ALL (:themes)
         OR (ai_prompt IS NOT NULL AND char_length(ai_prompt) > 2000)
         OR share_to_community <> EXISTS (SELECT 1 FROM community_snapshots c WHERE c.session_id = s.id)
         OR version < 1`,
      // Bound, not inlined: db.knex would read a `?` in a pattern as a placeholder.
      { themes: THEMES, customUrl: '^https?://[^/?#\\s]', anyUrl: '^https?://' },
    );
    expect(violations.rows, JSON.stringify(violations.rows.slice(0, 5))).to.deep.equal([]);

    // What the API last answered for each session is what the database holds.
    for (const [id, last] of state) {
      const res = await t.http().get(`/api/sessions/${id}`).set('Cookie', owner.cookie).expect(200);
      const { updatedAt: _a, communitySnapshot: _b, ...now } = res.body.session as Record<string, unknown>;
      const { updatedAt: _c, communitySnapshot: _d, etag, ...then } = last as Record<string, unknown>;
      expect(now, `session ${id}`).to.deep.equal(then);
      if (etag) expect(res.headers.etag).to.equal(etag);
    }
    // The imported sessions kept their locked fields; the stranger's session is untouched.
    for (const [, , imported] of laneSessions) {
      const row = await db.knex('sessions').where({ id: imported }).first();
      expect(row.subreddits).to.deep.equal(['funny']);
      expect(row.ai_prompt).to.equal(null);
      expect(row.caption_theme).to.equal('joi');
    }
    expect(await db.knex('sessions').where({ id: foreign }).first()).to.deep.equal(foreignBefore);
  });

  it('hostile query strings, paths and auth bodies: no 5xx; refused auth bodies create no account, login session or cookie, and count no login failure', async () => {
    const values = ['%00', 'a%00b', '%ED%A0%80', '%FF%FE', '%25%5F%5C', '%27%3B%20DROP%20TABLE%20sessions%3B--', 'x'.repeat(300), '-1', '0', '1e3', '2147483648', '99999999999', 'NaN', '%E0%A4%A', '__proto__', 'constructor'];
    const routes = ['/api/community', '/api/sessions', '/api/categories', '/api/community/sessions/1'];
    const params = ['search', 'subreddit', 'creatorId', 'categoryId', 'categorySlug', 'sort', 'page', 'pageSize', '__proto__', 'search[]', 'page[a]'];
    const failures: string[] = [];
    const check = (label: string, status: number, text: string): void => {
      if (status >= 500) failures.push(`${label} → ${status} ${text.slice(0, 200)}`);
    };
    for (const route of routes) {
      for (const param of params) {
        for (const [i, value] of values.entries()) {
          // Every other one given twice, which makes it an array to the router.
          const path = `${route}?${param}=${value}${i % 2 ? `&${param}=1` : ''}`;
          const res = await t.http().get(path).set('Cookie', owner.cookie);
          check(`GET ${path}`, res.status, res.text);
        }
      }
    }
    for (const value of values) {
      for (const path of [`/api/sessions/${value}`, `/api/community/sessions/${value}`]) {
        const res = await t.http().get(path).set('Cookie', owner.cookie);
        check(`GET ${path}`, res.status, res.text);
      }
    }
    // 'not-an-email' is a well-formed login that fails (401) but no account a register could make.
    const strings = ['a\u0000@example.test', 'x\u0000y12345678', '💥'.repeat(300), "' OR 1=1 --", '\ud800@x.y', 'not-an-email'];
    const rows = async (table: string): Promise<number> => Number((await db.knex(table).count<{ n: string }[]>({ n: '*' }))[0]!.n);
    const written: string[] = [];
    const answered = new Map<string, Set<number>>();
    let loginFailures = 0;
    expect(await db.knex('rate_limits'), 'no login attempt counted before').to.deep.equal([]);
    for (const email of strings) {
      for (const password of strings) {
        for (const route of ['/api/auth/login', '/api/auth/register']) {
          const label = `POST ${route} ${j(email).slice(0, 20)} / ${j(password).slice(0, 20)}`;
          const [users, sessions] = [await rows('users'), await rows('http_sessions')];
          const res = await t.http().post(route).set('Content-Type', 'application/json').set('X-Forwarded-For', '203.0.113.9').send(`{"email":${j(email)},"password":${j(password)}}`);
          check(label, res.status, res.text);
          answered.set(route, (answered.get(route) ?? new Set()).add(res.status));
          if (route === '/api/auth/login' && (res.status === 401 || res.status === 429)) loginFailures += 1;
          const wrote = [
            ...((await rows('users')) !== users ? ['a user'] : []),
            ...((await rows('http_sessions')) !== sessions ? ['a login session'] : []),
            ...(res.headers['set-cookie'] ? [`Set-Cookie ${String(res.headers['set-cookie'])}`] : []),
          ];
          if (wrote.length > 0) written.push(`${label} → ${res.status}: ${wrote.join(', ')}`);
        }
      }
    }
    expect(failures, failures.slice(0, 10).join('\n')).to.deep.equal([]);
    expect(written, written.join('\n')).to.deep.equal([]);
    expect([...answered.get('/api/auth/login')!].sort(), 'login: refused (400), wrong (401), then limited (429)').to.deep.equal([400, 401, 429]);
    // Only well-formed logins count against the client (its address, not the X-Forwarded-For it sent:
    // TRUST_PROXY is off), those that did not match and those refused for it; a refused body counts nothing.
    const limits = (await db.knex('rate_limits').select('key', 'points')) as { key: string; points: number }[];
    const perAddress = limits.filter((l) => l.key.startsWith('login-ip:'));
    expect(perAddress).to.have.length(1);
    expect(limits.map((l) => l.key).join(' ')).to.not.include('203.0.113.9');
    expect(perAddress[0]!.points).to.equal(loginFailures).and.to.be.greaterThan(0);
  });
});
