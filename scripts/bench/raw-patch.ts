import pg from 'pg';
import { READ_HTTP_SESSION } from '../../db/http-sessions.js';
import { cpuMeter, type Bench } from './harness.js';
import { quantile } from './stats.js';
import type { LoadResult, PatchKind, SessionRange } from './patch-load.js';
import { fieldEdit, pickSession, subredditChange } from './patch-load.js';

/*
 * The PATCH figures' matched baselines: the statements a PATCH sends PostgreSQL, sent straight
 * through `pg` from this process with as many clients as the HTTP run had connections, as named
 * prepared statements (as the web sends them). No HTTP, no JSON, no queue: what is left of a PATCH
 * once the platform is taken away. The login lookup is db/http-sessions.ts's own statement; the rest
 * is the text of db/sessions.ts.
 */

const READ_SESSION = `SELECT s.*, s.xmin::text AS row_version, cs.id AS snapshot_id, cs.status AS snapshot_status
  FROM sessions s LEFT JOIN community_snapshots cs ON cs.session_id = s.id
  WHERE s.id = $1 LIMIT 1`;
const GUARDED_UPDATE = `UPDATE sessions SET "title" = $2, "interval_min" = $3, "interval_max" = $4, version = version + 1,
  updated_at = greatest(now(), updated_at + interval '1 millisecond') WHERE id = $1 AND xmin = $5::text::xid RETURNING version, updated_at`;
const LOCKED_UPDATE = `UPDATE sessions SET "subreddits" = $2, "thumbnail_source" = 'auto', "thumbnail_generation" = $3, version = version + 1,
  updated_at = greatest(now(), updated_at + interval '1 millisecond') WHERE id = $1 RETURNING version, updated_at`;
// Written finished: a dispatched, unfinished row is what the reconciler takes for a job Redis lost,
// and undispatched ones the relay would add. The same two rows, and the same NOTIFY at COMMIT.
const OUTBOX_INSERT = `INSERT INTO job_outbox (queue, job_name, payload, dispatched_at, finished_at, final_state)
  VALUES ('media', 'sync', $1, now(), now(), 'completed'), ('thumbnails', 'generate', $2, now(), now(), 'completed') RETURNING id`;

/** One PATCH's statements on one client; `idHash` names the bench user's login session. */
async function statements(client: pg.PoolClient, kind: PatchKind, idHash: string, id: number): Promise<void> {
  const login = await client.query({ name: 'login', text: READ_HTTP_SESSION, values: [idHash] });
  if (login.rowCount !== 1) throw new Error('raw PATCH: the bench user has no live login session');
  if (kind === 'field edit') {
    const b = JSON.parse(fieldEdit()) as { title: string; intervalMin: number; intervalMax: number };
    const read = await client.query<{ row_version: string }>({ name: 'read', text: READ_SESSION, values: [id] });
    await client.query({ name: 'update-guarded', text: GUARDED_UPDATE, values: [id, b.title, b.intervalMin, b.intervalMax, read.rows[0]!.row_version] });
    return;
  }
  const b = JSON.parse(subredditChange()) as { subreddits: string };
  await client.query('BEGIN');
  try {
    const locked = await client.query<{ thumbnail_generation: number }>({ name: 'lock', text: `${READ_SESSION} FOR UPDATE OF s`, values: [id] });
    const generation = locked.rows[0]!.thumbnail_generation + 1;
    await client.query({ name: 'update-locked', text: LOCKED_UPDATE, values: [id, [b.subreddits], generation] });
    await client.query({ name: 'outbox', text: OUTBOX_INSERT, values: [{ sessionId: id }, { sessionId: id, generation }] });
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK');
    throw e;
  }
}

/** The matched baseline of a PATCH load: `clients` loops of its statements for `seconds`. */
export async function rawPatchLoad(bench: Bench, range: SessionRange, kind: PatchKind, clients: number, seconds: number): Promise<LoadResult> {
  await bench.knex.raw('VACUUM ANALYZE sessions, job_outbox');
  const { id_hash: idHash } = (await bench.knex('http_sessions').where({ user_id: bench.user.id }).orderBy('expires_at', 'desc').first('id_hash')) as { id_hash: string };
  const pool = new pg.Pool({ connectionString: bench.config.databaseUrl, max: clients });
  const latencies: number[] = [];
  const deadline = Date.now() + seconds * 1000;
  const loop = async (): Promise<void> => {
    const client = await pool.connect();
    try {
      while (Date.now() < deadline) {
        const started = process.hrtime.bigint();
        await statements(client, kind, idHash, pickSession(range));
        latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
      }
    } finally {
      client.release();
    }
  };
  // Every client connected (and its statements prepared) before the clock starts, as the web's pool is.
  await Promise.all(Array.from({ length: clients }, async () => (await pool.connect()).release()));
  const started = Date.now();
  const meter = cpuMeter(bench);
  await Promise.all(Array.from({ length: clients }, loop));
  const elapsed = (Date.now() - started) / 1000;
  // Before the pool ends: its backends' CPU is read while they still run.
  const cpu = meter.stop(latencies.length);
  await pool.end();
  return { reqPerSec: latencies.length / elapsed, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), cpu };
}
