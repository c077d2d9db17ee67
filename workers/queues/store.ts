import { Queue, Worker, createPostgresBackend, type BackendFactory, type Processor, type RedisQueueBackend, type QueueOptions, type WorkerOptions } from 'bullmq';
import { pingPostgres } from '../../db/database.js';
import { createQueuePool, type pg } from '../../db/queue-schema.js';
import type { RedisClient } from './connection.js';
import { queueKeyPrefix } from './contracts.js';

/**
 * Where a process's queues live (`QUEUE_BACKEND`): one Redis connection (or Cluster), or one
 * PostgreSQL pool on the application's database, in BullMQ's `bullmq` schema. Every Queue and
 * Worker of the process shares it: BullMQ's PostgreSQL backend would otherwise open a pool per Queue
 * and per Worker (docs/operations.md, "PostgreSQL as the job store", counts the connections).
 */
export type QueueStore = { kind: 'redis'; redis: RedisClient } | { kind: 'postgres'; pool: pg.Pool };

/**
 * A BullMQ Queue of `queue` on the store: on Redis with its hash-tagged key prefix; on PostgreSQL on
 * the shared pool through the PostgreSQL backend (where the schema is the namespace: no prefix).
 */
export function openQueue(store: QueueStore, base: string, queue: string, options: Omit<QueueOptions, 'connection' | 'prefix'> = {}): Queue {
  if (store.kind === 'postgres') return new Queue(queue, { ...options, connection: store.pool as never }, postgresBackend);
  return new Queue(queue, { ...options, connection: store.redis, prefix: queueKeyPrefix(base, queue) });
}

/** A BullMQ Worker of `queue` on the store (see {@link openQueue}). */
export function openWorker(store: QueueStore, base: string, queue: string, processor: Processor, options: Omit<WorkerOptions, 'connection' | 'prefix'>): Worker {
  if (store.kind === 'postgres') return new Worker(queue, processor, { ...options, connection: store.pool as never }, postgresBackend);
  return new Worker(queue, processor, { ...options, connection: store.redis, prefix: queueKeyPrefix(base, queue) });
}

/**
 * BullMQ's PostgreSQL backend, typed as the Redis one so both stores give the same `Queue` and
 * `Worker` types: the code above them uses only the API both backends implement.
 */
const postgresBackend = createPostgresBackend as unknown as BackendFactory<RedisQueueBackend>;

/** True while the store can be used: Redis connected, or (PostgreSQL) always: a pool connects on demand. */
export function storeIsReady(store: QueueStore): boolean {
  return store.kind === 'postgres' || store.redis.status === 'ready';
}

/** One round trip to the store: the readiness check. */
export async function pingStore(store: QueueStore): Promise<void> {
  if (store.kind === 'postgres') await pingPostgres(store.pool);
  else await store.redis.ping();
}

/** A short description for messages: the store and its state. */
export function describeStore(store: QueueStore): string {
  return store.kind === 'postgres' ? `PostgreSQL (${store.pool.totalCount} connections)` : `Redis (${store.redis.status})`;
}

export async function closeStore(store: QueueStore): Promise<void> {
  if (store.kind === 'postgres') await store.pool.end().catch(() => undefined);
  else store.redis.disconnect();
}

export { createQueuePool };
