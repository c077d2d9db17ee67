import autocannon from 'autocannon';
import { listCommunity, type CommunityFilter } from '../../../db/community.js';
import type { Knex } from '../../../db/knex.js';
import { explainStatement, statementsOf, tableScans } from '../../../db/plans.js';
import { findSession, listSessions, lockSession, snapshotsForSessions } from '../../../db/sessions.js';
import { countSnapshotsByStatus } from '../../../db/snapshots.js';
import { createUser } from '../../../db/users.js';
import { outboxStatus } from '../../../workers/index.js';
import { settleDatabase, until, type Bench } from '../harness.js';
import type { BenchPart } from '../part.js';
import { quantile, type Figure } from '../stats.js';

/** How many rows of each kind a database holds: the bench's small one, and a year of data. */
export interface ScaleSize {
  users: number;
  sessions: number;
  snapshots: number;
  finishedOutbox: number;
}

export const SMALL: ScaleSize = { users: 100, sessions: 10_000, snapshots: 1_000, finishedOutbox: 50_000 };
export const LARGE: ScaleSize = { users: 10_000, sessions: 1_000_000, snapshots: 100_000, finishedOutbox: 5_000_000 };
/** The heavy user's sessions, the same in both: GET /api/sessions returns all of them (its cap is 1,000). */
const HEAVY_SESSIONS = 1_000;
/** Undispatched rows one relay measurement writes at once. */
const RELAY_BACKLOG = 10_000;
const WORDS = ['aurora', 'harbor', 'meadow', 'canyon', 'glacier', 'lantern', 'orchid', 'tundra', 'willow', 'zephyr'];
/**
 * A selective search that keeps 1 % of the feed (one word of 100: 1,000 snapshots of the large
 * database, the most an exact total counts), a common one that keeps 10 % (a word of 10), and a
 * subreddit filter that keeps 11 % (sub17, sub170–sub179).
 */
const SEARCH = 'glacier7';
const SEARCH_COMMON = 'glacier';
const SUBREDDIT = 'sub17';
/** A subreddit filter that keeps most of the feed (111 names of 200: about 80 % of snapshots). */
const SUBREDDIT_BROAD = 'sub1';
/** Tables the seed makes large: a sequential scan of one of them on a request path is a finding. */
const LARGE_TABLES = ['sessions', 'users', 'community_snapshots', 'community_likes', 'job_outbox'];

/** The seeded rows go, so the next size starts from empty tables (the bench user and its login stay). */
async function clearSeed(knex: Knex): Promise<void> {
  await knex.raw('TRUNCATE sessions, job_outbox, community_snapshots CASCADE');
  await knex.raw(`DELETE FROM users WHERE id LIKE 'user_scale%'`);
}

/**
 * Seeds one size with server-side `INSERT … SELECT generate_series`, one statement per table: no
 * rows cross the wire, which is as fast as COPY here (pg-copy-streams, the well-kept COPY FROM STDIN
 * helper for `pg`, is not installed, and hand-writing the COPY protocol is not worth it).
 * The heavy user owns the newest 1,000 sessions; everything else is spread over `users` users.
 */
async function seed(knex: Knex, size: ScaleSize, heavyUserId: string): Promise<void> {
  await knex.raw(
    `INSERT INTO users (id, email, first_name, last_name, password_hash)
     SELECT 'user_scale' || i, 'scale' || i || '@bench.local', 'Scaler ' || i, 'Surname ' || (i % 97), 'not-a-hash' FROM generate_series(1, ?) i`,
    [size.users],
  );
  const category = (await knex('categories').where({ is_default: true }).first('id')) as { id: number };
  // Created over a year, newest first by id order; titles carry one of 100 words (a word and a digit).
  await knex.raw(
    `INSERT INTO sessions (user_id, title, subreddits, category_id, caption_theme, media_subreddits, thumbnail, thumbnail_source, created_at, updated_at)
     SELECT CASE WHEN g <= :heavy THEN :heavyUser ELSE 'user_scale' || (1 + g % :users) END,
            (CAST(:words AS text[]))[1 + g % 10] || (g / 10 % 10) || ' session ' || g,
            ARRAY['sub' || (g % 200), 'sub' || ((g * 7) % 200)], :category, 'joi', ARRAY['pics'], 'https://cdn.example.test/t.png', 'custom',
            now() - g * (interval '365 days' / :sessions), now() - g * (interval '365 days' / :sessions)
       FROM generate_series(1, :sessions) g`,
    { heavy: HEAVY_SESSIONS, heavyUser: heavyUserId, users: size.users, words: WORDS, category: category.id, sessions: size.sessions },
  );
  // Snapshots of sessions past the heavy user's, ready over the year in a scattered order (7919 is
  // prime); most unliked or liked a little, one in nine liked a lot (fewer than `users` each).
  await knex.raw(
    `WITH s AS (SELECT * FROM sessions WHERE user_id <> :heavyUser ORDER BY id LIMIT :snapshots),
          n AS (SELECT s.*, row_number() OVER (ORDER BY id) AS rn FROM s)
     INSERT INTO community_snapshots (session_id, user_id, title, subreddits, category_id, interval_min, interval_max, transition,
                                      caption_theme, is_manual_mode, is_imported, status, media_count, copied_count, ready_at, like_count)
     SELECT id, user_id, title, subreddits, category_id, interval_min, interval_max, transition, caption_theme, is_manual_mode, is_imported,
            'ready', 10, 10, now() - ((rn * 7919) % :snapshots) * (interval '365 days' / :snapshots),
            CASE WHEN rn % 9 = 0 THEN (rn * 31) % 50 ELSE rn % 3 END
       FROM n`,
    { heavyUser: heavyUserId, snapshots: size.snapshots },
  );
  await knex.raw(
    `INSERT INTO community_likes (user_id, snapshot_id)
     SELECT 'user_scale' || (1 + (s.id + k) % ?), s.id FROM community_snapshots s, generate_series(0, s.like_count - 1) k`,
    [size.users],
  );
  // Finished rows within the retention window (7 days by default), so the worker's retention task
  // deletes none of them while the bench measures; one in 10,000 was dispatched again.
  await knex.raw(
    `INSERT INTO job_outbox (queue, job_name, payload, created_at, next_attempt_at, dispatched_at, attempts, finished_at, final_state, redispatches)
     SELECT 'media', 'sync', jsonb_build_object('sessionId', g), t, t, t, 1, t + interval '2 seconds',
            CASE WHEN g % 100 = 0 THEN 'failed' ELSE 'completed' END, CASE WHEN g % 10000 = 0 THEN 1 ELSE 0 END
       FROM generate_series(1, :n) g, LATERAL (SELECT now() - interval '6 days' + g * (interval '6 days' / :n)) AS at(t)`,
    { n: size.finishedOutbox },
  );
}

interface Latency {
  p50: number;
  p99: number;
}

/** One autocannon run at 8 connections; throws on any non-2xx answer. */
async function load(bench: Bench, cookie: string, seconds: number, request: autocannon.Request, url = bench.webUrl): Promise<Latency> {
  const result = await autocannon({
    url,
    connections: 8,
    duration: seconds,
    requests: [request],
    headers: { cookie, 'content-type': 'application/json' },
  });
  if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0) {
    throw new Error(`${request.method ?? 'GET'} ${request.path ?? ''}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx responses`);
  }
  return { p50: result.latency.p50, p99: result.latency.p99 };
}

/**
 * Milliseconds from writing the backlog (one statement: one NOTIFY wakes the relay) until none of it
 * is undispatched. Returns once the worker has also run every job the pass added (not timed): the
 * next repetition would otherwise measure its PATCHes and reads beside 10,000 jobs still running.
 */
async function relayPass(knex: Knex): Promise<number> {
  const started = Date.now();
  // Purges of snapshots that do not exist: the jobs the relay adds end at once.
  await knex.raw(
    `INSERT INTO job_outbox (queue, job_name, payload) SELECT 'snapshots', 'purge', jsonb_build_object('snapshotId', 2000000000 - g) FROM generate_series(1, ?) g`,
    [RELAY_BACKLOG],
  );
  // Each count is one of the outbox's partial indexes (undispatched; dispatched and unfinished): a
  // count of "finished_at IS NULL" alone read all 5,000,000 rows of the large database, 0.7 s a poll.
  const left = async (rows: 'undispatched' | 'unfinished'): Promise<number> => {
    const query = knex('job_outbox');
    if (rows === 'undispatched') query.whereNull('dispatched_at');
    else query.whereNull('finished_at').whereNotNull('dispatched_at');
    return Number((await query.count<{ count: string }[]>({ count: '*' }).first())!.count);
  };
  let undispatched = RELAY_BACKLOG;
  await until(() => `the relay to dispatch the backlog (${undispatched} rows left)`, async () => (undispatched = await left('undispatched')) === 0, 300_000, 20);
  const dispatched = Date.now() - started;
  let unfinished = RELAY_BACKLOG;
  await until(() => `the worker to run the relay pass's jobs (${unfinished} unfinished)`, async () => (unfinished = await left('unfinished')) === 0, 600_000, 200);
  return dispatched;
}

/** Sequential calls of outboxStatus (what `npm run outbox:status` runs), as p50 and p99. */
async function outboxStatusTimes(knex: Knex, calls: number): Promise<Latency> {
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const started = process.hrtime.bigint();
    await outboxStatus(knex, 10);
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99) };
}

const FEEDS: Record<string, string> = {
  'community sort=new': '/api/community?sort=new',
  'community sort=top': '/api/community?sort=top',
  'community sort=hot': '/api/community?sort=hot',
  'community search, selective': `/api/community?search=${SEARCH}`,
  'community search, common': `/api/community?search=${SEARCH_COMMON}`,
  'community subreddit': `/api/community?subreddit=${SUBREDDIT}`,
  'community subreddit, broad': `/api/community?subreddit=${SUBREDDIT_BROAD}`,
};

/** Every measured path on one size: name → one latency per repetition. */
async function measure(bench: Bench, heavy: { id: string; cookie: string }, sessionIds: number[], opts: { reps: number; seconds: number }, log: (l: string) => void) {
  const out = new Map<string, Latency[]>();
  const add = (name: string, l: Latency): void => void out.set(name, [...(out.get(name) ?? []), l]);
  const pick = (): number => sessionIds[Math.floor(Math.random() * sessionIds.length)]!;
  const patchBody = (): string => JSON.stringify({ title: `Scale ${Math.random().toString(36).slice(2, 8)}`, intervalMin: 2, intervalMax: 9 });
  for (let r = 0; r < opts.reps; r++) {
    log(`scale: repetition ${r + 1}/${opts.reps}`);
    await settleDatabase(bench, log, ['sessions', 'job_outbox']);
    add('PATCH', await load(bench, heavy.cookie, opts.seconds, { method: 'PATCH', setupRequest: (req) => ({ ...req, path: `/api/sessions/${pick()}`, body: patchBody() }) }));
    add('GET /api/sessions (1,000 of the user)', await load(bench, heavy.cookie, opts.seconds, { method: 'GET', path: '/api/sessions' }));
    for (const [name, path] of Object.entries(FEEDS)) add(name, await load(bench, heavy.cookie, opts.seconds, { method: 'GET', path }));
    add('GET /api/admin/overview', await load(bench, heavy.cookie, opts.seconds, { method: 'GET', path: '/api/admin/overview' }));
    // On the metrics listener's own port (METRICS_PORT), where operators scrape it.
    add('GET /metrics', await load(bench, heavy.cookie, opts.seconds, { method: 'GET', path: '/metrics' }, bench.metricsUrl));
    // 300 calls: with 30, the p99 was the slowest single call (quantile 0.99 of 30 is the 30th), which
    // measured whatever else the machine did at that moment rather than the statements.
    add('outboxStatus (outbox:status)', await outboxStatusTimes(bench.knex, 300));
    const ms = await relayPass(bench.knex);
    add('relay pass (10,000 rows)', { p50: ms, p99: NaN });
  }
  return out;
}

/**
 * The statements each request path runs, taken from the db/ functions its route calls (knex's
 * `query` event gives their SQL and bindings), each EXPLAINed as sent: parameters, not inlined values.
 */
async function plans(knex: Knex, heavyId: string): Promise<{ path: string; sql: string; scans: string[]; text: string }[]> {
  const feed = (f: Partial<CommunityFilter>): CommunityFilter => ({ sort: 'new', limit: 20, offset: 0, viewerId: heavyId, ...f });
  const sessionId = ((await knex('sessions').where({ user_id: heavyId }).first('id')) as { id: number }).id;
  const paths: Record<string, () => Promise<unknown>> = {
    // The PATCH's lookup and row lock, in a transaction that is rolled back.
    PATCH: () =>
      knex
        .transaction(async (trx) => {
          await findSession(trx, sessionId);
          await lockSession(trx, sessionId);
          throw new Error('rolled back');
        })
        .catch(() => undefined),
    'GET /api/sessions': async () => {
      const { rows } = await listSessions(knex, { userId: heavyId, limit: 1000, offset: 0 });
      await snapshotsForSessions(knex, rows.map((r) => r.id));
    },
    ...Object.fromEntries(
      (['new', 'top', 'hot'] as const).map((sort) => [`community sort=${sort}`, () => listCommunity(knex, feed({ sort }))]),
    ),
    'community search, selective': () => listCommunity(knex, feed({ search: SEARCH })),
    'community search, common': () => listCommunity(knex, feed({ search: SEARCH_COMMON })),
    'community subreddit': () => listCommunity(knex, feed({ subreddit: SUBREDDIT })),
    'community subreddit, broad': () => listCommunity(knex, feed({ subreddit: SUBREDDIT_BROAD })),
    'admin overview, /metrics, outbox:status': () => Promise.all([outboxStatus(knex, 5), countSnapshotsByStatus(knex)]),
  };
  const out: { path: string; sql: string; scans: string[]; text: string }[] = [];
  for (const [path, run] of Object.entries(paths)) {
    for (const statement of await statementsOf(knex, run)) {
      if (!/^\s*(select|with)/i.test(statement.sql)) continue;
      const scans = tableScans(await explainStatement(knex, statement));
      out.push({ path, sql: statement.sql, scans, text: await explainStatement(knex, statement, 'text') });
    }
  }
  return out;
}

/** The seeded tables' size on disk, indexes and TOAST included. */
async function tableSizes(knex: Knex): Promise<string> {
  const { rows } = await knex.raw<{ rows: { relname: string; rows: string; size: string }[] }>(
    `SELECT c.relname, c.reltuples::bigint AS rows, pg_size_pretty(pg_total_relation_size(c.oid)) AS size
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind = 'r' AND pg_total_relation_size(c.oid) > 1024 * 1024
      ORDER BY pg_total_relation_size(c.oid) DESC`,
  );
  const lines = rows.map((r) => `| ${r.relname.padEnd(28)} | ${String(r.rows).padStart(10)} | ${r.size.padStart(9)} |`);
  return [`| ${'table'.padEnd(28)} | ${'rows (est.)'.padStart(10)} | ${'on disk'.padStart(9)} |`, `|${'-'.repeat(30)}|${'-'.repeat(12)}|${'-'.repeat(11)}|`, ...lines].join('\n');
}

/**
 * The scale part: every path measured on the bench's small database, then on a year of data
 * (LARGE), then on the small one again; each large figure next to the small one's (ratio
 * small/large: 1.0 = no growth); the plans of the statements those paths run on the large
 * database, and the tables' sizes.
 */
async function scaleRun(bench: Bench, opts: { quick: boolean; log: (line: string) => void }): Promise<{ figures: Figure[]; report: string }> {
  const { log } = opts;
  const password = 'scale-bench-password';
  const heavyUser = (await createUser(bench.knex, { email: `scale-heavy-${Date.now()}@bench.local`, password, role: 'admin' }, bench.config.passwordScryptCost))!;
  const login = await fetch(`${bench.webUrl}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: heavyUser.email, password }) });
  if (!login.ok) throw new Error(`scale login failed: ${login.status}`);
  const heavy = { id: heavyUser.id, cookie: login.headers.get('set-cookie')!.split(';')[0]! };
  const reps = opts.quick ? 1 : 3;
  const seconds = opts.quick ? 2 : 4;
  const results: Record<'small' | 'large', Map<string, Latency[]>> = { small: new Map(), large: new Map() };
  const seeding: string[] = [];
  let planned: Awaited<ReturnType<typeof plans>> = [];
  let sizes = '';
  // The small database is measured before the large one and again after it, and its figures are
  // both runs': whatever the run itself drifts by over the part's minutes (the processes' heaps,
  // Redis, the machine) then weighs on both sides of a ratio instead of looking like growth.
  for (const [name, size, label] of [['small', SMALL, 'small'], ['large', LARGE, 'large'], ['small', SMALL, 'small again']] as const) {
    await clearSeed(bench.knex);
    const started = Date.now();
    log(`scale: seeding the ${label} database (${size.sessions.toLocaleString('en')} sessions, ${size.snapshots.toLocaleString('en')} snapshots, ${size.finishedOutbox.toLocaleString('en')} finished outbox rows)`);
    await seed(bench.knex, size, heavy.id);
    // VACUUM for the visibility map (index-only scans), ANALYZE for the planner; and the seed's
    // writes go to disk now (the large seed writes about 1.4 GB), not during the measurements.
    // Counted in the seeding time, as the VACUUM always was.
    await settleDatabase(bench, log);
    seeding.push(`${label}: seeded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    log(`scale: ${seeding.at(-1)}`);
    const ids = (await bench.knex('sessions').where({ user_id: heavy.id }).pluck('id')) as number[];
    const measured = await measure(bench, heavy, ids, { reps, seconds }, log);
    for (const [path, l] of measured) {
      log(`scale: ${label}: ${path}: p50 ${l.map((x) => x.p50).join(', ')} ms, p99 ${l.map((x) => x.p99).join(', ')} ms`);
      results[name].set(path, [...(results[name].get(path) ?? []), ...l]);
    }
    if (name === 'large') {
      planned = await plans(bench.knex, heavy.id);
      sizes = await tableSizes(bench.knex);
    }
  }
  await clearSeed(bench.knex);

  const figures: Figure[] = [];
  for (const [path, large] of results.large) {
    const small = results.small.get(path) ?? [];
    for (const q of ['p50', 'p99'] as const) {
      if (large.every((l) => Number.isNaN(l[q]))) continue;
      figures.push({
        name: `scale: ${path}${path.startsWith('relay') ? '' : ` ${q}`}`,
        unit: 'ms',
        values: large.map((l) => l[q]),
        baseline: { name: 'small db, before + after', values: small.map((l) => l[q]) },
        better: 'lower',
        target: { text: 'ratio ≥ 0.8', met: (s) => (s.ratio ?? 0) >= 0.8 },
      });
    }
  }
  const seqScans = planned.flatMap((p) => p.scans.filter((s) => s.startsWith('Seq Scan') && LARGE_TABLES.some((t) => s.endsWith(` on ${t}`))).map((s) => `${p.path}: ${s}`));
  for (const p of planned) log(`plan (${p.path}): ${p.sql}\n${p.text}`);
  const planLines = planned.map((p) => `- ${p.path}: ${p.scans.join('; ') || 'no table read'}`);
  const report = [
    `Scale (small: ${SMALL.sessions.toLocaleString('en')} sessions; large: ${LARGE.sessions.toLocaleString('en')} sessions of ${LARGE.users.toLocaleString('en')} users, ` +
      `${LARGE.snapshots.toLocaleString('en')} ready snapshots with likes, ${LARGE.finishedOutbox.toLocaleString('en')} finished outbox rows; ${seeding.join(', ')}):`,
    '',
    'Tables on disk (large database):',
    '',
    sizes,
    '',
    'What each request path reads on the large database (EXPLAIN of its statements):',
    '',
    ...planLines,
    '',
    seqScans.length ? `Sequential scans of a large table on a request path:\n${seqScans.map((s) => `  ${s}`).join('\n')}` : 'No sequential scan of a large table on any request path.',
  ].join('\n');
  return { figures, report };
}

export const scalePart: BenchPart = {
  name: 'scale',
  measures:
    'p50/p99 of PATCH, the session list, the feed (new, top, hot, search, subreddit, a broad subreddit), the admin overview, /metrics (on its own port), outbox:status and a relay pass of 10,000 rows, on a year of data (1,000,000 sessions, 100,000 snapshots, 5,000,000 finished outbox rows; seeding takes a few minutes)',
  baseline: 'the same figure on a small database (10,000 sessions), measured before the large one and after it',
  run: (ctx) => scaleRun(ctx.bench, ctx),
};
