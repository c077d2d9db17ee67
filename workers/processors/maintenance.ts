import { setTimeout as sleep } from 'node:timers/promises';
import { deleteFinishedOutboxRows } from '../../db/outbox.js';
import { pruneHttpSessions } from '../../db/http-sessions.js';
import { deleteExpiredRateLimits } from '../../db/auth-limit-counters.js';
import type { JobName, MaintenanceTask } from '../queues/contracts.js';
import type { ProcessorDeps } from './deps.js';
import { collectDurableBlobs } from './durable-blobs.js';

/**
 * One task's unit of work: delete up to `limit` rows (or blobs) past their keep-time in one short
 * statement and say how many went. Each call stands alone, so locks and transactions stay short.
 */
export type MaintenanceBatch = (deps: ProcessorDeps, limit: number) => Promise<number>;

/** Every scheduled task; the compiler holds this to `MAINTENANCE_TASKS` in the contracts. */
export const MAINTENANCE_BATCHES: { [T in MaintenanceTask]: MaintenanceBatch } = {
  'outbox-retention': (deps, limit) => deleteFinishedOutboxRows(deps.knex, deps.config.maintenance.outboxRetentionDays, limit),
  'expired-logins': (deps, limit) => pruneHttpSessions(deps.knex, limit),
  'closed-login-windows': (deps, limit) => deleteExpiredRateLimits(deps.knex, limit),
  'durable-blobs': (deps, limit) => collectDurableBlobs(deps, limit),
};

export interface MaintenanceOutcome {
  task: MaintenanceTask;
  deleted: number;
  batches: number;
  /** True when shutdown stopped the run early; the next run carries on where it stopped. */
  interrupted: boolean;
}

/**
 * Runs one task to the end: batches until one deletes fewer than `MAINTENANCE_BATCH_SIZE`, or the
 * process is stopping (what is left waits for the next run). Counts go to the log and the metrics.
 * After a full batch it waits as long as that batch took before the next one: housekeeping then
 * keeps at most half of one database backend busy, and the requests beside it keep the rest (run
 * back to back, deleting 100,000 outbox rows under 8 connections of PATCHes doubled their p99 while
 * it lasted). The run takes about twice as long; nothing waits for it. A stop ends the wait at once.
 */
export async function runMaintenanceTask(deps: ProcessorDeps, task: MaintenanceTask): Promise<MaintenanceOutcome> {
  const limit = deps.config.maintenance.batchSize;
  const batch = MAINTENANCE_BATCHES[task];
  let deleted = 0;
  let batches = 0;
  let last = limit;
  let tookMs = 0;
  while (last >= limit && !deps.signal?.aborted) {
    if (batches > 0) {
      // Rejects only when the stop aborts the wait, which the check below then sees.
      await sleep(tookMs, undefined, deps.signal ? { signal: deps.signal } : {}).catch(() => undefined);
      if (deps.signal?.aborted) break;
    }
    const started = performance.now();
    last = await batch(deps, limit);
    tookMs = performance.now() - started;
    deleted += last;
    batches += 1;
    deps.metrics?.maintenanceDeleted(task, last);
  }
  const outcome = { task, deleted, batches, interrupted: last >= limit };
  deps.logger.info(outcome, 'maintenance task ran');
  return outcome;
}

/** The registry's `maintenance` entry: each job name is its task. */
export const MAINTENANCE_HANDLERS = Object.fromEntries(
  (Object.keys(MAINTENANCE_BATCHES) as MaintenanceTask[]).map((task) => [task, { run: (deps: ProcessorDeps) => runMaintenanceTask(deps, task) }]),
) as { [T in JobName<'maintenance'>]: { run(deps: ProcessorDeps): Promise<MaintenanceOutcome> } };
