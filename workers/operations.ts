import type { Knex } from '../db/knex.js';
import { insertOutboxJobs } from '../db/outbox.js';
import type { SnapshotRow, SnapshotStatus } from '../db/types.js';
import { jobs } from './queues/contracts.js';

/**
 * Operator actions shared by the admin API and the maintenance scripts. Each writes outbox rows in
 * one transaction, like every other job; the caller dispatches them (or leaves them to the relay).
 */

export interface SnapshotSelection {
  snapshotIds?: number[];
  sessionIds?: number[];
  statuses?: SnapshotStatus[];
  all?: boolean;
}

/** The snapshots a selection names, oldest first. */
export async function selectSnapshots(knex: Knex, selection: SnapshotSelection): Promise<SnapshotRow[]> {
  const q = knex<SnapshotRow>('community_snapshots').orderBy('id');
  if (selection.all) return q;
  if (!selection.snapshotIds?.length && !selection.sessionIds?.length && !selection.statuses?.length) return [];
  return q.where((w) => {
    if (selection.snapshotIds?.length) w.orWhereIn('id', selection.snapshotIds);
    if (selection.sessionIds?.length) w.orWhereIn('session_id', selection.sessionIds);
    if (selection.statuses?.length) w.orWhereIn('status', selection.statuses);
  });
}

export interface Rerun {
  snapshotId: number;
  outboxId: number;
}

/**
 * Queues a fresh create job for each snapshot (ready ones too: the job then finds nothing to do).
 * A failed snapshot goes back to `pending` with its last error kept for reference; copied items are
 * kept, so the job resumes.
 */
export async function rerunSnapshots(knex: Knex, snapshotIds: number[]): Promise<Rerun[]> {
  if (snapshotIds.length === 0) return [];
  return knex.transaction(async (trx) => {
    const rows = await trx<SnapshotRow>('community_snapshots').whereIn('id', snapshotIds).forUpdate().orderBy('id');
    await trx('community_snapshots')
      .whereIn('id', rows.filter((r) => r.status === 'failed').map((r) => r.id))
      .update({ status: 'pending', updated_at: trx.fn.now() });
    const ids = await insertOutboxJobs(trx, rows.map((r) => jobs.createSnapshot(r.id, r.session_id)));
    return rows.map((r, i) => ({ snapshotId: r.id, outboxId: ids[i]! }));
  });
}

export interface ThumbnailSelection {
  sessionIds?: number[];
  userIds?: string[];
  /** Every session whose thumbnail is generated (not custom). */
  allAuto?: boolean;
  /** Also replace custom thumbnails chosen by users. */
  includeCustom?: boolean;
}

export async function selectThumbnailSessions(knex: Knex, selection: ThumbnailSelection): Promise<{ id: number; thumbnail_source: string }[]> {
  const q = knex('sessions').select('id', 'thumbnail_source').orderBy('id');
  if (!selection.includeCustom) q.where({ thumbnail_source: 'auto' });
  if (selection.allAuto) return q;
  if (!selection.sessionIds?.length && !selection.userIds?.length) return [];
  return q.where((w) => {
    if (selection.sessionIds?.length) w.orWhereIn('id', selection.sessionIds);
    if (selection.userIds?.length) w.orWhereIn('user_id', selection.userIds);
  });
}

export interface Regeneration {
  sessionId: number;
  generation: number;
  outboxId: number;
}

/** Moves each session to a new thumbnail generation (auto) and queues its generation job. */
export async function regenerateThumbnails(knex: Knex, sessionIds: number[]): Promise<Regeneration[]> {
  if (sessionIds.length === 0) return [];
  return knex.transaction(async (trx) => {
    const rows: { id: number; thumbnail_generation: number }[] = await trx('sessions')
      .whereIn('id', sessionIds)
      .update({ thumbnail_generation: trx.raw('thumbnail_generation + 1'), thumbnail_source: 'auto' })
      .returning(['id', 'thumbnail_generation']);
    rows.sort((a, b) => a.id - b.id);
    const ids = await insertOutboxJobs(trx, rows.map((r) => jobs.generateThumbnail(r.id, r.thumbnail_generation)));
    return rows.map((r, i) => ({ sessionId: r.id, generation: r.thumbnail_generation, outboxId: ids[i]! }));
  });
}

export interface OutboxStatus {
  backlog: number;
  oldestUndispatchedAt: Date | null;
  oldestAgeSeconds: number | null;
  failing: number;
  recentErrors: { id: number; queue: string; jobName: string; attempts: number; lastError: string; nextAttemptAt: Date }[];
}

/** Undispatched rows, the age of the oldest, and the latest dispatch errors. */
export async function outboxStatus(knex: Knex, recent = 10): Promise<OutboxStatus> {
  const [summary] = await knex('job_outbox')
    .whereNull('dispatched_at')
    .select(
      knex.raw('count(*)::int AS backlog'),
      knex.raw('min(created_at) AS oldest'),
      knex.raw('extract(epoch FROM now() - min(created_at))::float AS age'),
      knex.raw('count(*) FILTER (WHERE last_error IS NOT NULL)::int AS failing'),
    );
  const errors = await knex('job_outbox')
    .whereNull('dispatched_at')
    .whereNotNull('last_error')
    .orderBy('id', 'desc')
    .limit(recent);
  return {
    backlog: summary?.backlog ?? 0,
    oldestUndispatchedAt: summary?.oldest ?? null,
    oldestAgeSeconds: summary?.age ?? null,
    failing: summary?.failing ?? 0,
    recentErrors: errors.map((e) => ({
      id: e.id,
      queue: e.queue,
      jobName: e.job_name,
      attempts: e.attempts,
      lastError: e.last_error,
      nextAttemptAt: e.next_attempt_at,
    })),
  };
}
