import { UnrecoverableError, type Job } from 'bullmq';
import type { Config } from '../../config.js';
import type { Knex } from '../../db/knex.js';
import { recordOutboxFinished } from '../../db/outbox.js';
import type { Logger } from '../../logger.js';
import { coerceError } from '../../logger.js';
import { DownloadError, type SafeFetchOptions } from '../lib/safe-fetch.js';
import { parseOutboxJobId } from '../queues/contracts.js';
import type { BlobStore } from '../storage/blob-storage.js';

/** What every processor is given; `workers/main.ts` builds it once. */
export interface ProcessorDeps {
  knex: Knex;
  blobs: BlobStore;
  config: Config;
  logger: Logger;
  /** Aborted when the process must stop: downloads end at once and the job goes back to its queue. */
  signal?: AbortSignal;
  /** The worker process's counters (`workers/metrics.ts`); absent when a test calls a processor directly. */
  metrics?: ProcessorMetrics;
  /** The outbox row of the running job, when it came from the outbox (set per run by the runtime). */
  completion?: JobCompletion;
}

/** A running job's completion record (docs/architecture.md §3: Postgres stays the system of record after dispatch). */
export interface JobCompletion {
  outboxId: number;
  /** Set once a handler recorded the completion itself; the runtime then does not write it again. */
  recorded: boolean;
}

/**
 * Records the job completed inside the handler's last write transaction, so the effect and the
 * record commit together: a crash between them cannot leave an effect the reconciler would re-run,
 * nor a record without its effect.
 */
export async function recordCompleted(deps: Pick<ProcessorDeps, 'completion'>, trx: Knex.Transaction): Promise<void> {
  if (!deps.completion) return;
  await recordOutboxFinished(trx, deps.completion.outboxId, { state: 'completed' });
  deps.completion.recorded = true;
}

/** What processors count beyond the runtime's per-job metrics. */
export interface ProcessorMetrics {
  /** Rows a maintenance task deleted in one run. */
  maintenanceDeleted(task: string, rows: number): void;
}

/** Download settings from config; `accept` narrows the content types per use. */
export function fetchOptions(deps: Pick<ProcessorDeps, 'config' | 'signal'>, accept?: (contentType: string) => boolean): SafeFetchOptions {
  return {
    allowPrivateHosts: deps.config.mediaAllowPrivateHosts,
    maxBytes: deps.config.mediaMaxBytes,
    ...(accept ? { accept } : {}),
    ...(deps.signal ? { signal: deps.signal } : {}),
  };
}

// Allowlists, not prefixes: `image/svg+xml` is an image too, but a public SVG blob can run script
// on the storage domain, and an HTML page labelled as anything else is refused by its type.
const IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif']);
const VIDEO_TYPES = new Set(['video/mp4', 'video/webm']);
export const isImage = (type: string): boolean => IMAGE_TYPES.has(type.toLowerCase());
export const isMedia = (type: string): boolean => isImage(type) || VIDEO_TYPES.has(type.toLowerCase());

/** An error no retry can fix (a 404, a private address, a corrupt image): fail the job now. */
export class PermanentError extends Error {
  override name = 'PermanentError';
}

/**
 * Decides whether BullMQ should retry: permanent failures become `UnrecoverableError`, which fails
 * the job without burning its remaining attempts.
 */
export function classify(e: unknown): Error {
  const error = coerceError(e);
  if (error instanceof UnrecoverableError) return error;
  if (error instanceof PermanentError || (error instanceof DownloadError && !error.retryable)) {
    return new UnrecoverableError(error.message);
  }
  return error;
}

/** True when this run is the job's last chance (no retry will follow a failure). */
export function isLastAttempt(job: Pick<Job, 'attemptsMade' | 'opts'>, error: Error): boolean {
  return error instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

/** A logger carrying the job's id, queue and outbox row. */
export function jobLogger(logger: Logger, job: Job): Logger {
  return logger.child({ jobId: job.id, queue: job.queueName, jobName: job.name, outboxId: parseOutboxJobId(job.id) });
}
