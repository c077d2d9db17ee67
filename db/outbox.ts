import { preparedQuery, type Knex } from './knex.js';
import type { OutboxRow } from './types.js';

/** A job as the outbox stores it; `workers/queues` builds these with typed payloads. */
export interface OutboxJob {
  queue: string;
  name: string;
  payload: Record<string, unknown>;
}

/** Subscribes a dedicated connection to the notification the table's insert trigger sends at COMMIT. */
export async function listenForOutboxRows(client: { query(sql: string): Promise<unknown> }): Promise<void> {
  await client.query('LISTEN job_outbox');
}

/**
 * A job as a transaction wrote it to the outbox, with its row id: the one form a committed
 * transaction hands to the after-COMMIT dispatch, which adds it without reading the row back.
 */
export interface WrittenOutboxJob extends OutboxJob {
  id: number;
}

/**
 * The outbox rows' insert: every job of a call in one named prepared statement, whatever their
 * number (three arrays, not three bindings per row, so neither the text nor its plan changes with
 * the count). The rows are inserted in the arrays' order, so their ids, drawn from the sequence as
 * they are inserted, rise in that order.
 */
const INSERT_OUTBOX_ROWS = `INSERT INTO job_outbox (queue, job_name, payload)
  SELECT queue, job_name, payload FROM unnest($1::text[], $2::text[], $3::jsonb[]) WITH ORDINALITY AS j(queue, job_name, payload, n) ORDER BY n
  RETURNING id`;

/** The one writer of outbox rows: writes the jobs inside the caller's transaction; returns them with their new row ids, in order. */
export async function writeOutboxJobs(trx: Knex.Transaction, jobs: OutboxJob[]): Promise<WrittenOutboxJob[]> {
  if (jobs.length === 0) return [];
  const rows = await preparedQuery<{ id: number }>(trx, 'outbox-insert', INSERT_OUTBOX_ROWS, [
    jobs.map((j) => j.queue),
    jobs.map((j) => j.name),
    jobs.map((j) => JSON.stringify(j.payload)),
  ]);
  const ids = rows.map((r) => r.id).sort((a, b) => a - b);
  return jobs.map((j, i) => ({ ...j, id: ids[i]! }));
}

/** Which undispatched rows to claim: the ones a transaction just wrote, or the oldest that are due. */
export type OutboxClaim = { ids: number[] } | { dueLimit: number };

/**
 * Locks undispatched rows for the rest of the transaction, skipping rows another dispatcher holds,
 * so any number of dispatchers can work at once and each row is claimed by one.
 */
export async function claimUndispatched(trx: Knex.Transaction, claim: OutboxClaim): Promise<OutboxRow[]> {
  const q = trx<OutboxRow>('job_outbox').whereNull('dispatched_at');
  if ('ids' in claim) q.whereIn('id', claim.ids);
  else q.where('next_attempt_at', '<=', trx.fn.now()).orderBy('id').limit(claim.dueLimit);
  return q.forUpdate().skipLocked();
}

/**
 * Marks rows whose jobs were added as dispatched. A row someone else marked first (the relay, after
 * adding the same job id) keeps its first dispatch time and attempt count.
 */
export async function markDispatched(db: Knex | Knex.Transaction, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  await preparedQuery(db, 'outbox-mark-dispatched', MARK_DISPATCHED, [ids]);
}

/** {@link markDispatched}'s statement: one for any number of rows (the fast path marks a batch each tick). */
const MARK_DISPATCHED = `UPDATE job_outbox SET dispatched_at = now(), attempts = attempts + 1, last_error = NULL
  WHERE id = ANY($1::bigint[]) AND dispatched_at IS NULL`;

/**
 * Records a failed dispatch: the error, one more attempt, and when to try again (backoff in SQL).
 * A row meanwhile dispatched by someone else is left as it is.
 */
export async function recordDispatchFailure(db: Knex | Knex.Transaction, ids: number[], message: string, maxBackoffMs: number): Promise<void> {
  await db('job_outbox')
    .whereIn('id', ids)
    .whereNull('dispatched_at')
    .update({
      attempts: db.raw('attempts + 1'),
      last_error: message.slice(0, 2000),
      // Exponential backoff per row, capped: 1s, 2s, 4s … up to maxBackoffMs.
      next_attempt_at: db.raw(`now() + least(?::int, 1000 * power(2, least(attempts, 20))::int) * interval '1 millisecond'`, [maxBackoffMs]),
    });
}

export interface OutboxBacklog {
  backlog: number;
  oldest: Date | null;
  /** Seconds since the oldest undispatched row was written. */
  ageSeconds: number | null;
  /** Undispatched rows whose last dispatch failed. */
  failing: number;
}

/** Undispatched rows: how many, the oldest, and how many have failed a dispatch. */
export async function outboxBacklog(knex: Knex): Promise<OutboxBacklog> {
  const [summary] = await knex('job_outbox')
    .whereNull('dispatched_at')
    .select(
      knex.raw('count(*)::int AS backlog'),
      knex.raw('min(created_at) AS oldest'),
      knex.raw('extract(epoch FROM now() - min(created_at))::float AS age'),
      knex.raw('count(*) FILTER (WHERE last_error IS NOT NULL)::int AS failing'),
    );
  return { backlog: summary?.backlog ?? 0, oldest: summary?.oldest ?? null, ageSeconds: summary?.age ?? null, failing: summary?.failing ?? 0 };
}

/**
 * Deletes up to `limit` rows whose job finished (completed or failed for good) more than
 * `retentionDays` ago; returns how many. One short statement per call: the caller loops, so no
 * transaction holds many row locks or runs long. A row never dispatched or not finished is kept,
 * and rows another transaction holds are skipped rather than waited for.
 */
export async function deleteFinishedOutboxRows(knex: Knex, retentionDays: number, limit: number): Promise<number> {
  const result = await knex.raw<{ rowCount: number }>(
    `DELETE FROM job_outbox WHERE id IN (
       SELECT id FROM job_outbox
       WHERE finished_at IS NOT NULL AND finished_at < now() - make_interval(days => ?) AND dispatched_at IS NOT NULL
       LIMIT ? FOR UPDATE SKIP LOCKED)`,
    [retentionDays, limit],
  );
  return result.rowCount;
}

/** The latest undispatched rows whose dispatch failed, newest first. */
export async function recentDispatchErrors(knex: Knex, limit: number): Promise<OutboxRow[]> {
  if (limit <= 0) return [];
  return knex<OutboxRow>('job_outbox').whereNull('dispatched_at').whereNotNull('last_error').orderBy('id', 'desc').limit(limit);
}

/**
 * The rows a completion may still be recorded on: not finished, or finished as failed (a job the
 * reconciler ran again after its failure was recorded can still complete). One condition for
 * {@link recordOutboxFinished} and for statements that record a completion with their effect.
 */
export const COMPLETABLE_OUTBOX_ROW = `(final_state IS NULL OR final_state = 'failed')`;

/**
 * Records that a row's job finished for good: completed, or failed with the reason. Run inside the
 * job's last write transaction when it has one. A row already completed stays as it is (a rerun of
 * an idempotent job changes nothing); a failed one may be completed or failed again later by an
 * operator's retry. Returns false when nothing changed.
 */
export async function recordOutboxFinished(
  db: Knex | Knex.Transaction,
  id: number,
  outcome: { state: 'completed' } | { state: 'failed'; reason: string },
): Promise<boolean> {
  const changed = await db('job_outbox')
    .where({ id })
    .whereRaw(COMPLETABLE_OUTBOX_ROW)
    .update({
      finished_at: db.fn.now(),
      final_state: outcome.state,
      ...(outcome.state === 'failed' ? { last_error: outcome.reason.slice(0, 2000) } : {}),
    });
  return changed > 0;
}

/**
 * Locks up to `limit` rows with ids above `afterId`, dispatched more than `olderThanMs` ago and not
 * finished, skipping rows another reconciler holds. By id, so a caller pages through them all.
 */
export async function claimUnfinished(trx: Knex.Transaction, olderThanMs: number, limit: number, afterId: number): Promise<OutboxRow[]> {
  return trx<OutboxRow>('job_outbox')
    .whereNull('finished_at')
    .whereNotNull('dispatched_at')
    .where('dispatched_at', '<', trx.raw(`now() - ?::bigint * interval '1 millisecond'`, [olderThanMs]))
    .where('id', '>', afterId)
    .orderBy('id')
    .limit(limit)
    .forUpdate()
    .skipLocked();
}

/** Rows dispatched again: counted, and their dispatch time restarted so they are checked again a full age later. */
export async function markRedispatched(trx: Knex.Transaction, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  await trx('job_outbox').whereIn('id', ids).update({ dispatched_at: trx.fn.now(), redispatches: trx.raw('redispatches + 1') });
}

export interface OutboxInFlight {
  /** Dispatched rows whose job has not finished. */
  unfinished: number;
  /** Seconds since the oldest of them was dispatched. */
  oldestUnfinishedAgeSeconds: number | null;
  /** Dispatches the reconciler added, over the rows still kept. */
  redispatched: number;
}

/**
 * Dispatched rows not finished (how many, the oldest's age) and how many dispatches the reconciler
 * added. Each figure reads only the rows it is about, through a partial index (job_outbox_unfinished,
 * job_outbox_redispatched): never the finished rows retention keeps, which are nearly all of them.
 */
export async function outboxInFlight(knex: Knex): Promise<OutboxInFlight> {
  const unfinished = 'FROM job_outbox WHERE finished_at IS NULL AND dispatched_at IS NOT NULL';
  const { rows } = await knex.raw<{ rows: { unfinished: number; age: number | null; redispatched: number }[] }>(
    `SELECT (SELECT count(*) ${unfinished})::int AS unfinished,
            (SELECT extract(epoch FROM now() - min(dispatched_at)) ${unfinished})::float AS age,
            (SELECT coalesce(sum(redispatches), 0) FROM job_outbox WHERE redispatches > 0)::int AS redispatched`,
  );
  const summary = rows[0];
  return { unfinished: summary?.unfinished ?? 0, oldestUnfinishedAgeSeconds: summary?.age ?? null, redispatched: summary?.redispatched ?? 0 };
}
