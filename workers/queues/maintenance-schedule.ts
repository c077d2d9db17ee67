import type { Queue } from 'bullmq';
import { coerceError, type Logger } from '../../logger.js';
import { MAINTENANCE_TASKS, type MaintenanceTask } from './contracts.js';
import { MAINTENANCE_JOB_OPTIONS } from './options.js';

/** The job scheduler of a task: one id per task, the same in every worker process. */
export const maintenanceSchedulerId = (task: MaintenanceTask): string => `maintenance:${task}`;

/**
 * Upserts one job scheduler per maintenance task, every `intervalMs`. BullMQ keeps one scheduler per
 * id, so any number of worker processes upserting at start leave one schedule and one job per
 * interval (whichever worker takes it). Schedulers of tasks no longer listed are removed.
 */
export async function upsertMaintenanceSchedulers(queue: Queue, intervalMs: number): Promise<void> {
  for (const task of MAINTENANCE_TASKS) {
    await queue.upsertJobScheduler(maintenanceSchedulerId(task), { every: intervalMs }, { name: task, data: {}, opts: { ...MAINTENANCE_JOB_OPTIONS } });
  }
  const wanted = new Set<string>(MAINTENANCE_TASKS.map(maintenanceSchedulerId));
  for (const scheduler of await queue.getJobSchedulers()) {
    if (!wanted.has(scheduler.key)) await queue.removeJobScheduler(scheduler.key);
  }
}

/**
 * Keeps trying {@link upsertMaintenanceSchedulers} until it succeeds, so a worker started while Redis
 * is away still schedules its housekeeping once Redis answers. `stop()` ends the retries at shutdown.
 */
export function scheduleMaintenance(queue: Queue, intervalMs: number, logger: Logger, retryMs = 30_000): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const attempt = (): void => {
    upsertMaintenanceSchedulers(queue, intervalMs).then(
      () => logger.info({ tasks: MAINTENANCE_TASKS, intervalMs }, 'maintenance scheduled'),
      (e: unknown) => {
        logger.warn({ err: coerceError(e), retryMs }, 'could not schedule maintenance; trying again');
        if (!stopped) timer = setTimeout(attempt, retryMs);
      },
    );
  };
  attempt();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
