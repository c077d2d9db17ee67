import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import pg from 'pg';
import { childrenOf } from '../../lib/child-process.js';
import { writeOutboxJobs } from '../../../db/outbox.js';
import { jobs, OUTBOX_QUEUE_NAMES } from '../../../workers/queues/contracts.js';
import { until, type Bench } from '../harness.js';
import type { BenchPart } from '../part.js';
import type { Figure } from '../stats.js';

/**
 * The soak: a long run of the mixed load an operator sees (session reads, feed pages and edits, one
 * edit in ten changing the subreddits, so a media sync and a thumbnail job each), then the time the
 * queues take to drain. It reports the web's and the worker's resident memory every minute and the
 * p99 of each window, against the targets of issue 27: RSS growth from minute 5 to the end under
 * 10 %, the last window's p99 at most 1.2 × the first's, the queues empty within 2 minutes of the
 * load ending.
 */
export interface SoakOptions {
  /** Length of the load (30 minutes; 3 with `--quick`). */
  minutes: number;
  /** Length of one p99 window (5 minutes; 1 with `--quick`). */
  windowMinutes: number;
  /** Concurrent HTTP connections of the load (closed loop). */
  connections: number;
  log: (line: string) => void;
}

/** Sessions the load reads and edits. */
const SESSIONS = 2_000;
/** Of them, shared to the community first, so the feed has items. */
const SHARED = 40;
/** How long the queues may take to drain before the soak stops waiting (the target is 2 minutes). */
const DRAIN_LIMIT_MS = 10 * 60_000;

/** Resident memory of a process, in MB (0 once it has ended). */
function rssMb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** The web's serving processes (the supervisor's children, or the one process) and the worker. */
function sampleRss(bench: Bench): { web: number; worker: number } {
  const webPid = bench.web.child.pid!;
  const serving = childrenOf(webPid);
  return { web: (serving.length > 0 ? serving : [webPid]).reduce((sum, pid) => sum + rssMb(pid), 0), worker: rssMb(bench.worker.child.pid!) };
}

/**
 * The bench user's sessions for the soak: automatic thumbnails, so a subreddit change makes jobs,
 * and media synced by the worker before the load starts, so the first window reads sessions as
 * full as the last (a session read returns its ~100 media).
 */
async function seed(bench: Bench): Promise<number[]> {
  const category = await bench.knex('categories').where({ is_default: true }).first('id');
  const { rows } = await bench.knex.raw<{ rows: { id: number }[] }>(
    `INSERT INTO sessions (user_id, title, subreddits, category_id, caption_theme, thumbnail_source)
     SELECT ?, 'Soak ' || g, ARRAY['bench'], ?, 'joi', 'auto' FROM generate_series(1, ?) AS g RETURNING id`,
    [bench.user.id, category!.id, SESSIONS],
  );
  const ids = rows.map((r) => r.id);
  // Written undispatched: the relay, woken by their NOTIFY, hands them to the worker.
  await bench.knex.transaction((trx) => writeOutboxJobs(trx, ids.map((id) => jobs.syncMedia(id))));
  await until(
    `${SESSIONS} sessions' media synced`,
    async () => Number((await bench.knex('sessions').whereIn('id', ids).whereRaw('media_subreddits = subreddits').count<{ count: number }[]>({ count: '*' }))[0]!.count) === ids.length,
    300_000,
    500,
  );
  return ids;
}

/** Waits until no outbox job is waiting, active or delayed and every outbox row is dispatched; ms it took. */
async function drain(bench: Bench, limitMs: number): Promise<number> {
  const started = Date.now();
  await until(
    'the queues to drain after the load',
    async () => {
      const counts = await Promise.all(OUTBOX_QUEUE_NAMES.map((q) => bench.producer.queues[q].getJobCounts('waiting', 'active', 'delayed', 'prioritized')));
      const pending = counts.reduce((n, c) => n + c.waiting! + c.active! + c.delayed! + c.prioritized!, 0);
      const undispatched = Number((await bench.knex('job_outbox').whereNull('dispatched_at').count<{ count: number }[]>({ count: '*' }))[0]!.count);
      return pending === 0 && undispatched === 0;
    },
    limitMs,
    500,
  );
  return Date.now() - started;
}

/**
 * One request of the mix, for autocannon's `setupRequest`. Each gets headers of its own: autocannon
 * writes a body's Content-Length into the request's headers object, and a GET sent with a PATCH's
 * stale Content-Length would keep its connection waiting for a body that never comes.
 */
function mixedRequest(ids: number[], cookie: string): (req: autocannon.Request) => autocannon.Request {
  let n = 0;
  return (req) => {
    n += 1;
    const id = ids[Math.floor(Math.random() * ids.length)]!;
    const roll = Math.random();
    if (roll < 0.45) return { ...req, method: 'GET', path: `/api/sessions/${id}`, headers: { cookie }, body: undefined };
    if (roll < 0.7) {
      const sort = ['new', 'top', 'hot'][n % 3]!;
      return { ...req, method: 'GET', path: `/api/community?sort=${sort}&page=${1 + (n % 3)}&pageSize=20`, headers: { cookie }, body: undefined };
    }
    // One edit in ten changes the subreddits (a media sync and a new thumbnail); the rest a field.
    const body = n % 10 === 0 ? { subreddits: `bench,soak${n % 50}` } : { title: `Soak edit ${n}` };
    return { ...req, method: 'PATCH', path: `/api/sessions/${id}`, headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify(body) };
  };
}

/**
 * Autovacuum's work while the server has it off (this machine's CI configuration does): without it
 * the soak would measure the bloat of tables it rewrites (media syncs replace a session's media),
 * which no production database has. Every minute, one VACUUM (ANALYZE) of the database on a
 * connection of its own, throttled with autovacuum's default cost settings, as autovacuum would run
 * it. Null when autovacuum is on.
 */
async function standInAutovacuum(bench: Bench, log: (line: string) => void): Promise<{ stop(): Promise<string> } | null> {
  const { rows } = await bench.knex.raw<{ rows: { setting: string }[] }>(`SELECT setting FROM pg_settings WHERE name = 'autovacuum'`);
  if (rows[0]?.setting === 'on') return null;
  log('soak: autovacuum is off on this server; the soak vacuums the database every minute in its place');
  const client = new pg.Client({ connectionString: bench.config.databaseUrl, application_name: 'bench-soak-vacuum' });
  await client.connect();
  await client.query(`SET vacuum_cost_delay = '2ms'; SET vacuum_cost_limit = 200`);
  const took: number[] = [];
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(async () => {
      const started = Date.now();
      await client.query('VACUUM (ANALYZE)');
      took.push(Date.now() - started);
    });
  }, 60_000);
  return {
    async stop() {
      clearInterval(timer);
      await running;
      await client.end();
      const longest = took.length > 0 ? Math.max(...took) / 1000 : 0;
      return `Autovacuum is off on this server (its CI configuration): the soak ran VACUUM (ANALYZE) in its place every minute, throttled as autovacuum is (vacuum_cost_delay 2 ms, vacuum_cost_limit 200): ${took.length} runs, the longest ${longest.toFixed(1)} s.`;
    },
  };
}

/** Runs the soak on a started bench; its figures (with targets) and a report of the samples. */
async function soakRun(bench: Bench, options: SoakOptions): Promise<{ figures: Figure[]; report: string }> {
  const { log } = options;
  const ids = await seed(bench);
  log(`soak: seeded ${ids.length} sessions with their media; sharing ${SHARED} to the community`);
  for (const id of ids.slice(0, SHARED)) {
    const res = await fetch(`${bench.webUrl}/api/sessions/${id}`, {
      method: 'PATCH',
      headers: { cookie: bench.user.cookie, 'content-type': 'application/json' },
      body: JSON.stringify({ shareToCommunity: true }),
    });
    if (!res.ok) throw new Error(`soak: sharing session ${id} answered ${res.status}`);
  }
  await until(`${SHARED} snapshots ready`, async () => Number((await bench.knex('community_snapshots').where({ status: 'ready' }).count<{ count: number }[]>({ count: '*' }))[0]!.count) >= SHARED, 300_000, 500);
  await drain(bench, DRAIN_LIMIT_MS);

  const vacuum = await standInAutovacuum(bench, log);
  const rss: { minute: number; web: number; worker: number }[] = [{ minute: 0, ...sampleRss(bench) }];
  const sampler = setInterval(() => rss.push({ minute: rss.length, ...sampleRss(bench) }), 60_000);
  const windows: { p50: number; p99: number; reqPerSec: number; errors: number }[] = [];
  try {
    const count = Math.ceil(options.minutes / options.windowMinutes);
    for (let w = 0; w < count; w++) {
      log(`soak: window ${w + 1}/${count} (${options.windowMinutes} min, ${options.connections} connections)`);
      const result = await autocannon({
        url: bench.webUrl,
        connections: options.connections,
        duration: options.windowMinutes * 60,
        requests: [{ setupRequest: mixedRequest(ids, bench.user.cookie) }],
      });
      const errors = result.errors + result.timeouts + result.non2xx;
      windows.push({ p50: result.latency.p50, p99: result.latency.p99, reqPerSec: result.requests.average, errors });
      log(`soak: window ${w + 1}: ${result.requests.average.toFixed(0)} req/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, ${errors} failed; RSS web ${rss.at(-1)!.web.toFixed(0)} MB, worker ${rss.at(-1)!.worker.toFixed(0)} MB`);
    }
  } catch (e) {
    await vacuum?.stop();
    throw e;
  } finally {
    clearInterval(sampler);
  }
  // The load's end, unless the minute sampler just took it.
  if (rss.at(-1)!.minute < options.minutes) rss.push({ minute: options.minutes, ...sampleRss(bench) });
  log('soak: load stopped; waiting for the queues to drain');
  // Not draining within the limit is a figure too (a missed target), not a reason to lose the run's.
  const drainMs = await drain(bench, DRAIN_LIMIT_MS).catch(() => Infinity);
  const vacuumed = (await vacuum?.stop()) ?? 'Autovacuum is on on this server.';

  const from = rss.find((s) => s.minute === Math.min(5, Math.floor(options.minutes / 2))) ?? rss[0]!;
  const last = rss.at(-1)!;
  const growth = (a: number, b: number): number => (100 * (b - a)) / a;
  const failed = windows.reduce((n, w) => n + w.errors, 0);
  const figures: Figure[] = [
    { name: `soak web RSS growth, minute ${from.minute} → ${last.minute}`, unit: '%', values: [growth(from.web, last.web)], better: 'lower', target: { text: '< 10 %', met: (s) => s.median < 10 } },
    { name: `soak worker RSS growth, minute ${from.minute} → ${last.minute}`, unit: '%', values: [growth(from.worker, last.worker)], better: 'lower', target: { text: '< 10 %', met: (s) => s.median < 10 } },
    { name: 'soak last window p99 / first', unit: '×', values: [windows.at(-1)!.p99 / windows[0]!.p99], better: 'lower', target: { text: '≤ 1.2', met: (s) => s.median <= 1.2 } },
    { name: 'soak queue drain after the load', unit: 's', values: [drainMs / 1000], better: 'lower', target: { text: '≤ 120 s', met: (s) => s.median <= 120 } },
    { name: 'soak requests failed', unit: 'requests', values: [failed], better: 'lower', target: { text: '= 0', met: (s) => s.median === 0 } },
  ];
  const report = [
    `Soak: ${options.minutes} min of mixed load (45 % session reads, 25 % feed pages, 30 % PATCHes, one in ten changing the subreddits) at ${options.connections} connections; ${SESSIONS} sessions, ${SHARED} shared.`,
    '',
    '| window | req/s | p50 ms | p99 ms | failed |',
    '|---|---|---|---|---|',
    ...windows.map((w, i) => `| ${i * options.windowMinutes}–${(i + 1) * options.windowMinutes} min | ${w.reqPerSec.toFixed(0)} | ${w.p50} | ${w.p99} | ${w.errors} |`),
    '',
    '| minute | web RSS MB (serving processes) | worker RSS MB |',
    '|---|---|---|',
    ...rss.map((s) => `| ${s.minute} | ${s.web.toFixed(0)} | ${s.worker.toFixed(0)} |`),
    '',
    vacuumed,
    '',
    Number.isFinite(drainMs) ? `Queues drained ${(drainMs / 1000).toFixed(1)} s after the load stopped.` : `Queues not drained ${DRAIN_LIMIT_MS / 60_000} minutes after the load stopped.`,
  ].join('\n');
  return { figures, report };
}

export const soakPart: BenchPart = {
  name: 'soak',
  measures:
    '30 minutes of mixed load at 16 connections (45 % session reads, 25 % feed pages, 30 % PATCHes, one in ten changing the subreddits) on 2,000 sessions with their media, 40 of them shared: RSS every minute, p50/p99 per 5-minute window, failed requests, the queues\' drain time (3 minutes with --quick)',
  baseline: 'its own first window and minute 5',
  runs: 'only',
  run: ({ bench, quick, log }) => soakRun(bench, { minutes: quick ? 3 : 30, windowMinutes: quick ? 1 : 5, connections: 16, log }),
};
