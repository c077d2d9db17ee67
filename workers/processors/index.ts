import type { Job } from 'bullmq';
import type { JobName, JobPayload, QueueName } from '../queues/contracts.js';
import type { ProcessorDeps } from './deps.js';
import { MAINTENANCE_HANDLERS } from './maintenance.js';
import { syncMedia } from './media.js';
import { createSnapshot, markSnapshotFailed, purgeSnapshot } from './snapshots.js';
import { generateThumbnail, purgeThumbnails } from './thumbnails.js';

/** What runs one kind of job: typed by its contract, so no handler casts its job. */
export interface JobHandler<Q extends QueueName, N extends JobName<Q>> {
  run(deps: ProcessorDeps, job: Job<JobPayload<Q, N>>): Promise<unknown>;
  /**
   * Called once the job has failed for good: its last attempt failed, the failure was permanent, or
   * its workers kept dying until BullMQ gave up on it (then `run` never saw the failure).
   */
  onFinalFailure?(deps: ProcessorDeps, job: Job<JobPayload<Q, N>>, error: Error): Promise<void>;
}

export type HandlerRegistry = { [Q in QueueName]: { [N in JobName<Q>]: JobHandler<Q, N> } };

/** Which function runs each job name of each queue: the compiler checks it against the contracts. */
export const HANDLERS: HandlerRegistry = {
  media: { sync: { run: syncMedia } },
  thumbnails: { generate: { run: generateThumbnail }, purge: { run: purgeThumbnails } },
  snapshots: {
    create: {
      run: createSnapshot,
      // A snapshot must not stay `copying` forever: its owner and the operators see why it stopped.
      onFinalFailure: (deps, job, error) => markSnapshotFailed(deps, job.data.snapshotId, error.message),
    },
    purge: { run: purgeSnapshot },
  },
  maintenance: MAINTENANCE_HANDLERS,
};

/** A handler as the runtime holds it: BullMQ's jobs come from Redis untyped. */
export interface UntypedHandler {
  run(deps: ProcessorDeps, job: Job): Promise<unknown>;
  onFinalFailure?(deps: ProcessorDeps, job: Job, error: Error): Promise<void>;
}

/**
 * The handler of a job by its queue and name, or undefined for a name the contracts do not know.
 * The one place a job read from Redis is taken to match its contract: the outbox wrote it from
 * `jobs.*`, which the contracts type.
 */
export function handlerFor(queue: QueueName, name: string): UntypedHandler | undefined {
  const handlers = HANDLERS[queue] as unknown as Record<string, UntypedHandler>;
  return Object.hasOwn(handlers, name) ? handlers[name] : undefined;
}
