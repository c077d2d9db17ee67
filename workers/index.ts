/**
 * The jobs layer's public face: all that the web (server/) and the operator scripts use of workers/.
 * Enqueueing goes through the outbox (a transaction writes rows with `jobs.*`; after COMMIT the
 * fast path dispatches them), the job contracts name queues, states and job ids, the blob store
 * turns blob names into URLs and answers readiness checks, and the operations are what an operator
 * may ask for (rerun snapshots, regenerate thumbnails, read the outbox's state).
 * Processors, the runtime and the relay stay behind this file: only `workers/main.ts` runs them.
 */
import type { Config } from '../config.js';
import type { Knex } from '../db/knex.js';
import type { Logger } from '../logger.js';
import { OutboxDispatcher } from './outbox/dispatcher.js';
import { FastDispatch } from './outbox/fast-path.js';
import { JobProducer } from './queues/producer.js';

export {
  JOB_STATES,
  QUEUE_NAMES,
  isQueueName,
  jobs,
  outboxJobId,
  parseOutboxJobId,
  type JobState,
  type QueueName,
} from './queues/contracts.js';
export { JobProducer } from './queues/producer.js';
export { OutboxDispatcher } from './outbox/dispatcher.js';
export { FastDispatch } from './outbox/fast-path.js';
export { BlobStore } from './storage/blob-storage.js';
export { ThumbnailUrlPolicy } from './storage/thumbnail-urls.js';
export { createRedis, type RedisClient } from './queues/connection.js';
export {
  outboxStatus,
  regenerateThumbnails,
  rerunSnapshots,
  selectSnapshots,
  selectThumbnailSessions,
  type OutboxStatus,
  type Regeneration,
  type Rerun,
  type SnapshotSelection,
  type ThumbnailSelection,
} from './operations.js';

/** A process's way to enqueue: a producer on Redis, and the outbox dispatch over it. */
export interface JobClient {
  producer: JobProducer;
  dispatcher: OutboxDispatcher;
  /** Dispatches the rows a transaction just committed, off the request path. */
  fast: FastDispatch;
  /** Lets in-flight dispatches finish, then closes the Redis connection. */
  close(): Promise<void>;
}

/** Builds the producer and the outbox dispatch for one process (`connectionName` shows in Redis's CLIENT LIST). */
export function createJobClient(config: Config, knex: Knex, logger: Logger, connectionName: string): JobClient {
  const producer = JobProducer.fromConfig(config, connectionName);
  const dispatcher = new OutboxDispatcher(knex, producer, logger, { maxBackoffMs: config.outbox.maxBackoffMs });
  const fast = new FastDispatch(dispatcher, logger);
  return {
    producer,
    dispatcher,
    fast,
    async close() {
      await fast.drain();
      await producer.close();
    },
  };
}
