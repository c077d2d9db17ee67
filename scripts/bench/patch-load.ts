import autocannon from 'autocannon';
import { cpuMeter, until, type Bench, type CpuShare } from './harness.js';

export const SESSION_COUNT = 10_000;

export interface SessionRange {
  first: number;
  last: number;
}

/**
 * 10,000 sessions of the bench user, in one statement, with automatic thumbnails: a change of
 * subreddits then writes a media sync and a thumbnail job, as it would for a user's session.
 */
export async function seedSessions(bench: Bench): Promise<SessionRange> {
  const category = await bench.knex('categories').where({ is_default: true }).first('id');
  const { rows } = await bench.knex.raw<{ rows: { id: number }[] }>(
    `INSERT INTO sessions (user_id, title, subreddits, category_id, caption_theme, media_subreddits, thumbnail_source)
     SELECT ?, 'Bench ' || g, ARRAY['pics'], ?, 'joi', ARRAY['pics'], 'auto'
     FROM generate_series(1, ?) AS g RETURNING id`,
    [bench.user.id, category!.id, SESSION_COUNT],
  );
  const ids = rows.map((r) => r.id);
  return { first: Math.min(...ids), last: Math.max(...ids) };
}

export interface LoadResult {
  reqPerSec: number;
  p50: number;
  p99: number;
  /** CPU ms per request of each process. */
  cpu: CpuShare;
}

/**
 * The two PATCHes measured: a field edit (the reference example's body; no job, no lock) and a
 * change of subreddits (a media sync and a thumbnail job: the row lock and the outbox).
 */
export type PatchKind = 'field edit' | 'writes jobs';

export const pickSession = (range: SessionRange): number => range.first + Math.floor(Math.random() * (range.last - range.first + 1));

/** The reference example's body, varied so each PATCH really writes. */
export function fieldEdit(): string {
  const min = 1 + Math.floor(Math.random() * 10);
  return JSON.stringify({ title: `Updated Session Title ${Math.random().toString(36).slice(2, 8)}`, intervalMin: min, intervalMax: min + 8 });
}

/** One subreddit of 1,000, so a PATCH almost always changes it. */
export function subredditChange(): string {
  return JSON.stringify({ subreddits: `bench${Math.floor(Math.random() * 1000)}` });
}

/**
 * Runs `load` with the job queues paused, so the jobs its PATCHes write wait in Redis instead of
 * running beside the load (the baseline's jobs do not run either); then removes them and marks their
 * rows finished, so that neither the worker nor the reconciler runs them through the parts after.
 */
export async function withJobsHeld<T>(bench: Bench, load: () => Promise<T>): Promise<T> {
  const queues = [bench.producer.queues.media, bench.producer.queues.thumbnails];
  await Promise.all(queues.map((q) => q.pause()));
  try {
    return await load();
  } finally {
    await until('the PATCHes\' outbox rows to be dispatched', async () => !(await bench.knex('job_outbox').whereNull('dispatched_at').first('id')), 120_000, 50);
    await Promise.all(queues.map((q) => q.drain(true)));
    await bench.knex('job_outbox').whereNull('finished_at').update({ finished_at: bench.knex.fn.now(), final_state: 'completed' });
    await Promise.all(queues.map((q) => q.resume()));
  }
}

/**
 * Every run starts from a vacuumed database: otherwise autovacuum, woken by the previous run's
 * updates and inserts, works through the next run and charges it for the one before.
 */
async function settle(bench: Bench): Promise<void> {
  await bench.knex.raw('VACUUM ANALYZE sessions, job_outbox');
}

/** PATCH /api/sessions/:id on random sessions through HTTP, driven by autocannon over loopback. */
export async function patchLoad(bench: Bench, range: SessionRange, kind: PatchKind, connections: number, seconds: number, url = bench.webUrl): Promise<LoadResult> {
  await settle(bench);
  const run = async (): Promise<LoadResult> => {
    const meter = cpuMeter(bench);
    const body = kind === 'field edit' ? fieldEdit : subredditChange;
    const result = await autocannon({
      url,
      connections,
      duration: seconds,
      requests: [{ method: 'PATCH', setupRequest: (req) => ({ ...req, path: `/api/sessions/${pickSession(range)}`, body: body() }) }],
      headers: { cookie: bench.user.cookie, 'content-type': 'application/json' },
    });
    if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0) {
      throw new Error(`PATCH (${kind}) load at ${connections} connections: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx responses`);
    }
    const cpu = meter.stop(result.requests.total);
    return { reqPerSec: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, cpu };
  };
  return kind === 'field edit' ? run() : withJobsHeld(bench, run);
}
