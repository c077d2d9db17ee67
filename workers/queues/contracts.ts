import type { OutboxJob } from '../../db/outbox.js';

/** The queues and their jobs: the one contract the API, the relay and the workers share. */
export const QUEUE_NAMES = ['media', 'thumbnails', 'snapshots', 'maintenance'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

/**
 * The queues whose jobs are written through the outbox. `maintenance` is not one: its jobs come from
 * job schedulers the worker processes upsert at start (and `job_outbox`'s CHECK refuses it).
 */
export const OUTBOX_QUEUE_NAMES = ['media', 'thumbnails', 'snapshots'] as const satisfies readonly QueueName[];
export type OutboxQueueName = (typeof OUTBOX_QUEUE_NAMES)[number];

/**
 * Scheduled housekeeping, one job scheduler each (`workers/queues/maintenance-schedule.ts`) and one
 * function each (`workers/processors/maintenance.ts`, which the compiler holds to this list):
 * adding a task is a name here and its function there.
 */
export const MAINTENANCE_TASKS = ['outbox-retention', 'expired-logins', 'closed-login-windows', 'durable-blobs'] as const;
export type MaintenanceTask = (typeof MAINTENANCE_TASKS)[number];

export interface JobPayloads {
  media: { sync: { sessionId: number } };
  thumbnails: {
    generate: { sessionId: number; generation: number };
    /** Deletes every thumbnail blob of a deleted session. */
    purge: { sessionId: number };
  };
  snapshots: {
    create: { snapshotId: number; sessionId: number };
    purge: { snapshotId: number };
  };
  /** A scheduled run of one task; the scheduler's template carries no data. */
  maintenance: { [T in MaintenanceTask]: Record<string, never> };
}

export type JobName<Q extends QueueName> = keyof JobPayloads[Q] & string;
export type JobPayload<Q extends QueueName, N extends JobName<Q>> = JobPayloads[Q][N];

/** A job bound for the outbox, typed by queue and name. */
export interface TypedOutboxJob<Q extends OutboxQueueName, N extends JobName<Q>> extends OutboxJob {
  queue: Q;
  name: N;
  payload: JobPayload<Q, N> & Record<string, unknown>;
}

function job<Q extends OutboxQueueName, N extends JobName<Q>>(queue: Q, name: N, payload: JobPayload<Q, N>): TypedOutboxJob<Q, N> {
  return { queue, name, payload: payload as JobPayload<Q, N> & Record<string, unknown> };
}

/** Builders for every job the platform runs. */
export const jobs = {
  syncMedia: (sessionId: number) => job('media', 'sync', { sessionId }),
  generateThumbnail: (sessionId: number, generation: number) => job('thumbnails', 'generate', { sessionId, generation }),
  purgeThumbnails: (sessionId: number) => job('thumbnails', 'purge', { sessionId }),
  createSnapshot: (snapshotId: number, sessionId: number) => job('snapshots', 'create', { snapshotId, sessionId }),
  purgeSnapshot: (snapshotId: number) => job('snapshots', 'purge', { snapshotId }),
};

/** The states a BullMQ job can be in, as operators see them (dashboard, overview, metrics). */
export const JOB_STATES = ['waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized'] as const;
export type JobState = (typeof JOB_STATES)[number];

export const isQueueName = (name: string): name is QueueName => (QUEUE_NAMES as readonly string[]).includes(name);
export const isOutboxQueueName = (name: string): name is OutboxQueueName => (OUTBOX_QUEUE_NAMES as readonly string[]).includes(name);

const OUTBOX_JOB_ID_PREFIX = 'outbox-';

/** The BullMQ job id of an outbox row: a second dispatch of the same row is the same job. */
export function outboxJobId(outboxId: number): string {
  return `${OUTBOX_JOB_ID_PREFIX}${outboxId}`;
}

/** The outbox row a BullMQ job id names, or undefined for a job that did not come from the outbox. */
export function parseOutboxJobId(jobId: string | undefined): number | undefined {
  if (!jobId?.startsWith(OUTBOX_JOB_ID_PREFIX)) return undefined;
  const id = Number(jobId.slice(OUTBOX_JOB_ID_PREFIX.length));
  return Number.isSafeInteger(id) && id > 0 ? id : undefined;
}

/**
 * A queue's BullMQ key prefix: `{<base>:<queue>}`. Every key of a queue shares that Redis Cluster hash
 * tag (BullMQ's scripts touch several keys of a queue at once, which a cluster allows only within one
 * slot), and each queue has a tag of its own, so a cluster spreads the queues over its shards. On a
 * single Redis the braces are just characters. Producer, workers, dashboard, metrics and scripts all
 * reach the queues through this prefix.
 */
export function queueKeyPrefix(base: string, queue: string): string {
  return `{${base}:${queue}}`;
}

/** The prefix every queue shared before per-queue hash tags (`{<base>}`): keys an upgrade moves from. */
export function legacyQueueKeyPrefix(base: string): string {
  return `{${base}}`;
}
