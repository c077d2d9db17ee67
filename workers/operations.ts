import type { Knex } from '../db/knex.js';
import { outboxBacklog, outboxInFlight, recentDispatchErrors } from '../db/outbox.js';
import { writeOutboxJobs, type WrittenOutboxJob } from '../db/outbox.js';
import { advanceThumbnailGenerations } from '../db/sessions.js';
import { lockSnapshotsForRerun } from '../db/snapshots.js';
import { jobs } from './queues/contracts.js';

/**
 * Operator actions shared by the admin API and the maintenance scripts. Each writes outbox rows in
 * one transaction, like every other job; the caller dispatches them (or leaves them to the relay).
 */

export { selectSnapshots, type SnapshotSelection } from '../db/snapshots.js';
export { selectThumbnailSessions, type ThumbnailSelection } from '../db/sessions.js';

export interface Rerun {
  snapshotId: number;
  /** The job as written, for the after-COMMIT dispatch. */
  outbox: WrittenOutboxJob;
  /** `outbox.id`, which the scripts follow. */
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
    const rows = await lockSnapshotsForRerun(trx, snapshotIds);
    const written = await writeOutboxJobs(trx, rows.map((r) => jobs.createSnapshot(r.id, r.session_id)));
    return rows.map((r, i) => ({ snapshotId: r.id, outbox: written[i]!, outboxId: written[i]!.id }));
  });
}

export interface Regeneration {
  sessionId: number;
  generation: number;
  /** The job as written, for the after-COMMIT dispatch. */
  outbox: WrittenOutboxJob;
  /** `outbox.id`, which the scripts follow. */
  outboxId: number;
}

/** Moves each session to a new thumbnail generation (auto) and queues its generation job. */
export async function regenerateThumbnails(knex: Knex, sessionIds: number[]): Promise<Regeneration[]> {
  if (sessionIds.length === 0) return [];
  return knex.transaction(async (trx) => {
    const rows = await advanceThumbnailGenerations(trx, sessionIds);
    const written = await writeOutboxJobs(trx, rows.map((r) => jobs.generateThumbnail(r.id, r.thumbnail_generation)));
    return rows.map((r, i) => ({ sessionId: r.id, generation: r.thumbnail_generation, outbox: written[i]!, outboxId: written[i]!.id }));
  });
}

export interface OutboxStatus {
  backlog: number;
  oldestUndispatchedAt: Date | null;
  oldestAgeSeconds: number | null;
  failing: number;
  /** Dispatched rows whose job has not finished (running, queued, or lost by Redis until the reconciler acts). */
  unfinished: number;
  /** Seconds since the oldest of those was dispatched (or dispatched again). */
  oldestUnfinishedAgeSeconds: number | null;
  /** Dispatches the reconciler added because Redis had lost the job, over the rows still kept. */
  redispatched: number;
  recentErrors: { id: number; queue: string; jobName: string; attempts: number; lastError: string; nextAttemptAt: Date }[];
}

/** Undispatched rows, the age of the oldest, the latest dispatch errors, and dispatched rows not finished. */
export async function outboxStatus(knex: Knex, recent = 10): Promise<OutboxStatus> {
  const [summary, errors, inFlight] = await Promise.all([outboxBacklog(knex), recentDispatchErrors(knex, recent), outboxInFlight(knex)]);
  return {
    backlog: summary.backlog,
    oldestUndispatchedAt: summary.oldest,
    oldestAgeSeconds: summary.ageSeconds,
    failing: summary.failing,
    unfinished: inFlight.unfinished,
    oldestUnfinishedAgeSeconds: inFlight.oldestUnfinishedAgeSeconds,
    redispatched: inFlight.redispatched,
    recentErrors: errors.map((e) => ({
      id: e.id,
      queue: e.queue,
      jobName: e.job_name,
      attempts: e.attempts,
      lastError: e.last_error ?? '',
      nextAttemptAt: e.next_attempt_at,
    })),
  };
}
