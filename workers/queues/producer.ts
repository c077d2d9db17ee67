import type { Queue } from 'bullmq';
import type { Config, QueueBackend } from '../../config.js';
import { QUEUE_NAMES, type QueueName } from './contracts.js';
import { createRedis, type RedisBounds, type RedisClient } from './connection.js';
import { closeStore, createQueuePool, describeStore, openQueue, pingStore, storeIsReady, type QueueStore } from './store.js';
import { jobOptions, type JobOptionsConfig } from './options.js';
import { retryPolicyOf } from './retry-policy.js';

export interface ProducerConfig extends JobOptionsConfig {
  /** `REDIS_URL`: one Redis, or a Redis Cluster (`redis-cluster://…`). */
  redisUrl: string;
  /** Base of the per-queue hash-tagged prefixes (`QUEUE_PREFIX`; see {@link queueKeyPrefix}). */
  queuePrefix: string;
  /** Its connection's deadlines; `addAll` gives up after the command timeout too. */
  redisBounds: RedisBounds;
  /** `QUEUE_BACKEND` (default redis); on postgres the queues are in DATABASE_URL's database. */
  queueBackend?: QueueBackend;
  databaseUrl?: string;
  bounds?: Config['bounds'];
  /** A store the process already has (a worker process's one queue pool): used, and left open at close. */
  sharedStore?: QueueStore;
}

export interface JobToAdd {
  queue: QueueName;
  name: string;
  data: Record<string, unknown>;
  jobId: string;
}

/** Connections a producer's PostgreSQL pool may hold: it never blocks, so a few for its adds and reads. */
export const PRODUCER_POOL_MAX = 4;

/** The queues as a producer sees them, over one fail-fast Redis connection or one small PostgreSQL pool. */
export class JobProducer {
  readonly store: QueueStore;
  readonly queues: Record<QueueName, Queue>;
  private readonly addTimeoutMs: number;
  private readonly ownsStore: boolean;

  /** The producer a process builds from its configuration (on `sharedStore` when given). */
  static fromConfig(config: Config, connectionName: string, sharedStore?: QueueStore): JobProducer {
    return new JobProducer(
      {
        redisUrl: config.redisUrl,
        queuePrefix: config.queuePrefix,
        ...retryPolicyOf(config),
        redisBounds: { commandTimeoutMs: config.bounds.redisCommandMs },
        queueBackend: config.queueBackend,
        databaseUrl: config.databaseUrl,
        bounds: config.bounds,
        ...(sharedStore ? { sharedStore } : {}),
      },
      connectionName,
    );
  }

  constructor(
    config: ProducerConfig,
    connectionName = 'showrunner-producer',
  ) {
    this.ownsStore = !config.sharedStore;
    this.store =
      config.sharedStore ??
      (config.queueBackend === 'postgres' && config.databaseUrl && config.bounds
        ? { kind: 'postgres', pool: createQueuePool({ databaseUrl: config.databaseUrl, bounds: config.bounds }, connectionName, PRODUCER_POOL_MAX) }
        : { kind: 'redis', redis: createRedis(config.redisUrl, 'producer', connectionName, config.redisBounds) });
    this.addTimeoutMs = this.store.kind === 'postgres' && config.bounds ? config.bounds.databaseQueryMs : config.redisBounds.commandTimeoutMs;
    const entries = QUEUE_NAMES.map((name) => [name, openQueue(this.store, config.queuePrefix, name, { defaultJobOptions: jobOptions(name, config) })]);
    this.queues = Object.fromEntries(entries) as Record<QueueName, Queue>;
    // Errors surface through the rejected add; the event alone must not crash the process.
    for (const queue of Object.values(this.queues)) queue.on('error', () => undefined);
  }

  /** The Redis connection; for Redis-only operations (the legacy-key move, the eviction check, tests). */
  get redis(): RedisClient {
    if (this.store.kind !== 'redis') throw new Error('the queues are on PostgreSQL (QUEUE_BACKEND=postgres): there is no Redis connection');
    return this.store.redis;
  }

  /** False while Redis is unreachable: dispatchers then leave rows to a later pass instead of waiting. */
  isReady(): boolean {
    return storeIsReady(this.store);
  }

  /** One round trip to where the queues are (the readiness check). */
  ping(): Promise<void> {
    return pingStore(this.store);
  }

  /** Waits up to `timeoutMs` for the connection; true once Redis answers. */
  async waitUntilReady(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.isReady() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    return this.isReady();
  }

  /**
   * Adds jobs grouped per queue, one bulk add each, all queues at once (on one Redis connection they
   * go out in one write); a job id already known to BullMQ is ignored. When one queue refuses, the
   * caller treats them all as not added: adding one again under its job id is still one job.
   * Rejects within `timeoutMs` (the connection's command timeout): while Redis is unreachable BullMQ
   * would otherwise wait for it.
   */
  async addAll(jobs: JobToAdd[], timeoutMs = this.addTimeoutMs): Promise<void> {
    const byQueue = new Map<QueueName, JobToAdd[]>();
    for (const job of jobs) byQueue.set(job.queue, [...(byQueue.get(job.queue) ?? []), job]);
    const work = Promise.all(
      [...byQueue].map(([queue, list]) => this.queues[queue].addBulk(list.map((j) => ({ name: j.name, data: j.data, opts: { jobId: j.jobId } })))),
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${describeStore(this.store)} did not accept the jobs within ${timeoutMs} ms`)), timeoutMs);
    });
    work.catch(() => undefined);
    try {
      await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled(Object.values(this.queues).map((q) => q.close()));
    if (this.ownsStore) await closeStore(this.store);
  }
}
