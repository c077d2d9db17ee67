import type { JobsOptions } from 'bullmq';
import type { QueueName } from './contracts.js';

export interface JobOptionsConfig {
  /** First retry delay; each next one doubles. */
  backoffMs: number;
}

/** Attempts per queue: downloads and uploads get more tries than a listing fetch. */
const ATTEMPTS: Record<QueueName, number> = { media: 5, thumbnails: 5, snapshots: 8 };

/**
 * Every job: bounded retries with exponential backoff, and retention by count and age so Redis does
 * not grow without bound. Completed jobs are kept a day, which also keeps the `outbox-<id>` job id
 * known to BullMQ long enough that a late second dispatch of the same row is ignored.
 */
export function jobOptions(queue: QueueName, config: JobOptionsConfig): JobsOptions {
  return {
    attempts: ATTEMPTS[queue],
    backoff: { type: 'exponential', delay: config.backoffMs },
    removeOnComplete: { age: 24 * 3600, count: 5_000 },
    removeOnFail: { age: 14 * 24 * 3600, count: 10_000 },
  };
}
