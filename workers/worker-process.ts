import sharp from 'sharp';
import { describeConfig, type Config } from '../config.js';
import { createKnex, databaseBounds } from '../db/knex.js';
import { assertMigrationsCurrent } from '../db/migrate.js';
import { coerceError, createLogger } from '../logger.js';
import { onShutdownSignal } from '../lifecycle.js';
import { OutboxDispatcher } from './outbox/dispatcher.js';
import { OutboxReconciler } from './outbox/reconciler.js';
import { OutboxRelay } from './outbox/relay.js';
import { masters } from './queues/connection.js';
import { moveLegacyJobs } from './queues/legacy-keys.js';
import { scheduleMaintenance } from './queues/maintenance-schedule.js';
import { JobProducer } from './queues/producer.js';
import { WorkerMetrics } from './metrics.js';
import { startWorkers, workerQueuePool } from './runtime.js';
import { closeStore } from './queues/store.js';
import { BlobStore } from './storage/blob-storage.js';

/** Evicted keys are lost jobs: BullMQ needs `maxmemory-policy noeviction`. */
async function checkEvictionPolicy(producer: JobProducer, logger: ReturnType<typeof createLogger>): Promise<void> {
  try {
    if (!(await producer.waitUntilReady(5_000))) throw new Error(`Redis is not answering (${producer.redis.status})`);
    // Each master holds its own share of the keys (a Redis Cluster): every one must be set so.
    for (const node of masters(producer.redis)) {
      const policy = ((await node.config('GET', 'maxmemory-policy')) as string[])[1];
      if (policy === 'noeviction') continue;
      logger.warn(
        { policy },
        `REDIS IS SET TO maxmemory-policy=${policy}: Redis may evict BullMQ keys and lose jobs. Set it to noeviction.`,
      );
    }
  } catch (e) {
    logger.warn({ err: coerceError(e) }, 'could not read Redis maxmemory-policy (CONFIG may be disabled); make sure it is noeviction');
  }
}

/** What a worker process may be started with besides its configuration. */
export interface WorkerProcessOptions {
  /**
   * Whether jobs record their completion on their outbox row (and the reconciler runs): always in
   * production. Only the bench's completion part starts a worker without, to measure what the
   * record costs (scripts/bench/worker-without-record.ts); it is no configuration variable.
   */
  completionRecord?: boolean;
}

/**
 * The worker process: its queues' workers, the outbox relay, the reconciler, the maintenance
 * schedule and the metrics listener, stopped in order on the first shutdown signal.
 */
export async function runWorker(config: Config, { completionRecord = true }: WorkerProcessOptions = {}): Promise<void> {
  const logger = createLogger(config, 'worker');
  // Every thumbnail has a different source: libvips's operation cache only holds memory here.
  sharp.cache(false);
  const knex = createKnex({ databaseUrl: config.databaseUrl, applicationName: 'showrunner-worker', poolMax: config.workerConcurrency * 3 + 4, bounds: databaseBounds(config, 'worker') });
  await assertMigrationsCurrent(knex);
  const blobs = BlobStore.fromConnectionString(config.azureStorageConnectionString, config.blobContainers, { timeoutMs: config.bounds.storageMs });
  await blobs.ensureContainers();

  // On PostgreSQL one queue pool serves the relay's producer and every Worker of this process.
  const queueStore = config.queueBackend === 'postgres' ? workerQueuePool(config) : undefined;
  const producer = JobProducer.fromConfig(config, 'showrunner-relay', queueStore);
  // Both are about Redis keys: PostgreSQL evicts nothing, and its queues never had the old keys.
  if (config.queueBackend === 'redis') {
    await checkEvictionPolicy(producer, logger);
    // Before taking jobs: what an older version left under the shared `{QUEUE_PREFIX}` keys moves to the per-queue ones.
    await moveLegacyJobs(producer, config.queuePrefix, logger).catch((e: unknown) =>
      logger.error({ err: coerceError(e) }, 'could not move jobs from the old queue keys; the next worker start tries again'),
    );
  }
  const dispatcher = new OutboxDispatcher(knex, producer, logger, { maxBackoffMs: config.outbox.maxBackoffMs });
  const relay = new OutboxRelay(dispatcher, logger, {
    databaseUrl: config.databaseUrl,
    databaseBounds: databaseBounds(config, 'worker'),
    pollIntervalMs: config.outbox.pollIntervalMs,
    batchSize: config.outbox.batchSize,
  });
  const metrics = new WorkerMetrics();
  const workers = startWorkers({ knex, blobs, config, logger, metrics }, {
    redisUrl: config.redisUrl,
    queuePrefix: config.queuePrefix,
    concurrency: config.workerConcurrency,
    completionRecord,
    ...(queueStore ? { store: queueStore } : {}),
    onJobFinished: (queue, outcome, ms) => metrics.record(queue, outcome, ms),
  });
  const metricsPort = config.workerMetricsPort > 0 ? await metrics.listen(config.workerMetricsPort, config.metricsHost) : null;
  await relay.start();
  // Every worker upserts the same schedulers: one run per interval however many workers there are.
  const maintenance = scheduleMaintenance(producer.queues.maintenance, config.maintenance.intervalMs, logger);
  // Beside the relay: the relay sends rows Redis never got, the reconciler rows Redis got and lost.
  const reconciler = new OutboxReconciler(knex, producer, logger, {
    afterMs: config.outbox.reconcileAfterMs,
    intervalMs: config.outbox.reconcileIntervalMs,
    batchSize: config.outbox.batchSize,
    onReconciled: (outcome) => metrics.recordReconciled(outcome),
  });
  // Without completion records every dispatched row would look lost: no reconciler then (measuring only).
  if (completionRecord) reconciler.start();
  else logger.warn('started without completion records (the bench measuring their cost): no reconciler; a job Redis loses stays lost');
  logger.info({ concurrency: config.workerConcurrency, metricsPort, config: describeConfig(config) }, 'worker started');

  onShutdownSignal(logger, async () => {
    // Stop intake first; active jobs get the grace period, then are returned to their queues.
    maintenance.stop();
    await relay.stop();
    await reconciler.stop();
    await workers.close(config.shutdownGraceMs);
    await metrics.close();
    await producer.close();
    if (queueStore) await closeStore(queueStore);
    await knex.destroy();
  }, config.shutdownGraceMs + SHUTDOWN_CLOSE_MS);
}

/**
 * How long closing the connections may take after the grace period (when every job is back in its
 * queue) before the worker exits 1 saying so: a Redis connection that never closes must not keep it.
 */
const SHUTDOWN_CLOSE_MS = 15_000;

