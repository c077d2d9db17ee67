import autocannon from 'autocannon';
import pg from 'pg';
import { cpuMeter, type Bench, type CpuShare } from './harness.js';

export const SESSION_COUNT = 10_000;

/** 10,000 sessions of the bench user, in one statement. Returns the id range. */
export async function seedSessions(bench: Bench): Promise<{ first: number; last: number }> {
  const category = await bench.knex('categories').where({ is_default: true }).first('id');
  const { rows } = await bench.knex.raw<{ rows: { id: number }[] }>(
    `INSERT INTO sessions (user_id, title, subreddits, category_id, caption_theme, media_subreddits, thumbnail, thumbnail_source)
     SELECT ?, 'Bench ' || g, ARRAY['pics'], ?, 'joi', ARRAY['pics'], 'https://cdn.example.test/t.png', 'custom'
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

const pick = (range: { first: number; last: number }): number => range.first + Math.floor(Math.random() * (range.last - range.first + 1));

/** The reference example's body, varied so each PATCH really writes. */
function body(): string {
  const min = 1 + Math.floor(Math.random() * 10);
  return JSON.stringify({ title: `Updated Session Title ${Math.random().toString(36).slice(2, 8)}`, intervalMin: min, intervalMax: min + 8 });
}

/**
 * Every run starts from a vacuumed database: otherwise autovacuum, woken by the previous run's
 * updates and inserts, works through the next run and charges it for the one before.
 */
async function settle(bench: Bench): Promise<void> {
  await bench.knex.raw('VACUUM ANALYZE sessions, job_outbox');
}

/** PATCH /api/sessions/:id on random sessions through HTTP, driven by autocannon over loopback. */
export async function patchLoad(bench: Bench, range: { first: number; last: number }, connections: number, seconds: number): Promise<LoadResult> {
  await settle(bench);
  const meter = cpuMeter(bench);
  const result = await autocannon({
    url: bench.webUrl,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'PATCH',
        setupRequest: (req) => ({ ...req, path: `/api/sessions/${pick(range)}`, body: body() }),
      },
    ],
    headers: { cookie: bench.user.cookie, 'content-type': 'application/json' },
  });
  if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0) {
    throw new Error(`PATCH load at ${connections} connections: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx responses`);
  }
  const cpu = meter.stop(result.requests.total);
  return { reqPerSec: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, cpu };
}

/**
 * The raw limit: the same transaction (lock, update, outbox insert, commit) straight through `pg`
 * from this process, with as many clients as the HTTP run had connections.
 */
export async function rawTransactionLoad(bench: Bench, range: { first: number; last: number }, clients: number, seconds: number): Promise<LoadResult> {
  await settle(bench);
  const pool = new pg.Pool({ connectionString: bench.config.databaseUrl, max: clients });
  const latencies: number[] = [];
  const deadline = Date.now() + seconds * 1000;
  const worker = async (): Promise<void> => {
    const client = await pool.connect();
    try {
      while (Date.now() < deadline) {
        const id = pick(range);
        const started = process.hrtime.bigint();
        await client.query('BEGIN');
        await client.query('SELECT * FROM sessions WHERE id = $1 FOR UPDATE', [id]);
        const b = JSON.parse(body()) as { title: string; intervalMin: number; intervalMax: number };
        await client.query(
          `UPDATE sessions SET title = $2, interval_min = $3, interval_max = $4, version = version + 1, updated_at = now() WHERE id = $1`,
          [id, b.title, b.intervalMin, b.intervalMax],
        );
        // Written finished: a dispatched, unfinished row is what the worker's reconciler takes for a
        // job Redis lost, and it dispatched these ~100,000 rows again as media syncs, which the worker
        // then ran through the parts after this one.
        await client.query(
          `INSERT INTO job_outbox (queue, job_name, payload, dispatched_at, finished_at, final_state) VALUES ('media', 'sync', $1, now(), now(), 'completed')`,
          [JSON.stringify({ sessionId: id })],
        );
        await client.query('COMMIT');
        latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
      }
    } finally {
      client.release();
    }
  };
  const started = Date.now();
  const meter = cpuMeter(bench);
  await Promise.all(Array.from({ length: clients }, worker));
  const elapsed = (Date.now() - started) / 1000;
  // Before the pool ends: its backends' CPU is read while they still run.
  const cpu = meter.stop(latencies.length);
  await pool.end();
  latencies.sort((a, b) => a - b);
  return {
    reqPerSec: latencies.length / elapsed,
    p50: latencies[Math.floor(latencies.length * 0.5)] ?? NaN,
    p99: latencies[Math.floor(latencies.length * 0.99)] ?? NaN,
    cpu,
  };
}
