import { Queue } from 'bullmq';
import type { Config } from '../../config.js';
import { QUEUE_NAMES, queueKeyPrefix, type QueueName } from './contracts.js';
import { createRedis, type RedisBounds, type RedisClient } from './connection.js';
import { jobOptions, type JobOptionsConfig } from './options.js';
import { retryPolicyOf } from './retry-policy.js';

export interface ProducerConfig extends JobOptionsConfig {
  /** `REDIS_URL`: one Redis, or a Redis Cluster (`redis-cluster://…`). */
  redisUrl: string;
  /** Base of the per-queue hash-tagged prefixes (`QUEUE_PREFIX`; see {@link queueKeyPrefix}). */
  queuePrefix: string;
  /** Its connection's deadlines; `addAll` gives up after the command timeout too. */
  redisBounds: RedisBounds;
}

export interface JobToAdd {
  queue: QueueName;
  name: string;
  data: Record<string, unknown>;
  jobId: string;
}

/** The queues as a producer sees them, over one fail-fast Redis connection. */
export class JobProducer {
  readonly redis: RedisClient;
  readonly queues: Record<QueueName, Queue>;
  private readonly addTimeoutMs: number;

  /** The producer a process builds from its configuration. */
  static fromConfig(config: Config, connectionName: string): JobProducer {
    return new JobProducer(
      { redisUrl: config.redisUrl, queuePrefix: config.queuePrefix, ...retryPolicyOf(config), redisBounds: { commandTimeoutMs: config.bounds.redisCommandMs } },
      connectionName,
    );
  }

  constructor(
    config: ProducerConfig,
    connectionName = 'showrunner-producer',
  ) {
    this.redis = createRedis(config.redisUrl, 'producer', connectionName, config.redisBounds);
    this.addTimeoutMs = config.redisBounds.commandTimeoutMs;
    const entries = QUEUE_NAMES.map((name) => [
      name,
      new Queue(name, {
        connection: this.redis,
        prefix: queueKeyPrefix(config.queuePrefix, name),
        defaultJobOptions: jobOptions(name, config),
      }),
    ]);
    this.queues = Object.fromEntries(entries) as Record<QueueName, Queue>;
    // Errors surface through the rejected add; the event alone must not crash the process.
    for (const queue of Object.values(this.queues)) queue.on('error', () => undefined);
  }

  /** False while Redis is unreachable: dispatchers then leave rows to a later pass instead of waiting. */
  isReady(): boolean {
    return this.redis.status === 'ready';
  }

  /** Waits up to `timeoutMs` for the connection; true once Redis answers. */
  async waitUntilReady(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.isReady() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    return this.isReady();
  }

  /**
   * Adds jobs grouped per queue with one round trip each; a job id already known to BullMQ is ignored.
   * Rejects within `timeoutMs` (the connection's command timeout): while Redis is unreachable BullMQ
   * would otherwise wait for it.
   */
  async addAll(jobs: JobToAdd[], timeoutMs = this.addTimeoutMs): Promise<void> {
    const byQueue = new Map<QueueName, JobToAdd[]>();
    for (const job of jobs) byQueue.set(job.queue, [...(byQueue.get(job.queue) ?? []), job]);
    const work = (async () => {
      for (const [queue, list] of byQueue) {
        await this.queues[queue].addBulk(list.map((j) => ({ name: j.name, data: j.data, opts: { jobId: j.jobId } })));
      }
    })();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not accept the jobs within ${timeoutMs} ms (status: ${this.redis.status})`)), timeoutMs);
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
    this.redis.disconnect();
  }
}
