import type { JobsOptions } from 'bullmq';
import type { QueueName } from './contracts.js';
import { attemptsWithin, CAPPED_EXPONENTIAL, type RetryPolicy } from './retry-policy.js';

/** The retry settings from config (`config.jobs`). */
export type JobOptionsConfig = RetryPolicy;

/**
 * Every job: bounded retries with capped exponential backoff over the retry horizon (a transient
 * failure outlasts an outage of a few hours; a permanent one fails at once), and retention by count
 * and age so Redis does not grow without bound. Completed jobs are kept a day, which also keeps the
 * `outbox-<id>` job id known to BullMQ long enough that a late second dispatch of the same row is ignored.
 */
export function jobOptions(queue: QueueName, config: JobOptionsConfig): JobsOptions {
  if (queue === 'maintenance') return { ...MAINTENANCE_JOB_OPTIONS };
  return {
    attempts: attemptsWithin(config),
    backoff: { type: CAPPED_EXPONENTIAL, delay: config.backoffMs },
    removeOnComplete: { age: 24 * 3600, count: 5_000 },
    removeOnFail: { age: 14 * 24 * 3600, count: 10_000 },
  };
}

/**
 * Scheduled housekeeping: one try per run, since the scheduler starts the next run an interval later
 * and a retry would only overlap it; a short history is enough for the dashboard.
 */
export const MAINTENANCE_JOB_OPTIONS = {
  attempts: 1,
  removeOnComplete: { count: 100 },
  removeOnFail: { count: 500 },
} as const satisfies JobsOptions;
