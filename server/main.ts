import cluster from 'node:cluster';
import http from 'node:http';
import { describeConfig, type Config } from '../config.js';
import { createKnex, databaseBounds } from '../db/knex.js';
import { assertMigrationsCurrent } from '../db/migrate.js';
import { createLogger } from '../logger.js';
import { onShutdownSignal, runMain } from '../lifecycle.js';
import { BlobStore, createJobClient, createRedis } from '../workers/index.js';
import { listenMetrics } from '../metrics-listener.js';
import { createApp } from './app.js';
import { createWebMetrics } from './metrics.js';
import { superviseWebProcesses } from './web-cluster.js';

async function main(config: Config): Promise<void> {
  const logger = createLogger(config, 'web');
  const knex = createKnex({ databaseUrl: config.databaseUrl, applicationName: 'showrunner-web', poolMax: config.databasePoolMax, bounds: databaseBounds(config, 'web') });
  await assertMigrationsCurrent(knex);

  const jobs = createJobClient(config, knex, logger, 'showrunner-web');
  const blobs = BlobStore.fromConnectionString(config.azureStorageConnectionString, config.blobContainers, { timeoutMs: config.bounds.storageMs });
  // The API rate limit's counters: a connection of its own that fails fast, so a request never waits
  // on Redis longer than API_RATE_LIMIT_TIMEOUT_MS (then the per-process count answers).
  const rateLimitRedis =
    config.apiRateLimit.points > 0 && config.queueBackend === 'redis'
      ? createRedis(config.redisUrl, 'request', 'showrunner-web-rate-limit', { commandTimeoutMs: config.bounds.rateLimitMs, deadSocketMs: config.bounds.redisCommandMs })
      : undefined;
  const metrics = createWebMetrics({ knex, queues: jobs.producer });
  const app = createApp({
    config,
    knex,
    logger,
    metrics,
    afterCommit: (ids) => jobs.fast.submit(ids),
    queues: jobs.producer,
    blobs,
    ...(rateLimitRedis ? { rateLimitRedis } : {}),
  });
  const server = http.createServer(app.callback());
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, resolve);
  });
  // Alone, this process serves its metrics; under the supervisor, the supervisor serves everyone's.
  const metricsListener =
    config.metricsPort > 0 && !cluster.isWorker
      ? await listenMetrics({ port: config.metricsPort, host: config.metricsHost }, () => metrics.registry.metrics(), metrics.registry.contentType)
      : null;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  // Under the supervisor (WEB_CONCURRENCY > 1), it says "web listening" once every process does.
  if (cluster.isWorker) logger.info({ port }, 'web process listening');
  else logger.info({ port, config: describeConfig(config) }, 'web listening');

  onShutdownSignal(logger, async () => {
    // Stop accepting, let accepted requests finish (within the grace period), then close the pools.
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const idle = setInterval(() => server.closeIdleConnections(), 100);
    const grace = setTimeout(() => {
      logger.warn({ graceMs: config.shutdownGraceMs }, 'grace period over: closing remaining connections');
      server.closeAllConnections();
    }, config.shutdownGraceMs);
    await closed;
    clearInterval(idle);
    clearTimeout(grace);
    await metricsListener?.close();
    await jobs.close();
    rateLimitRedis?.disconnect();
    await knex.destroy();
  });
}

await runMain((config) => (config.webConcurrency > 1 && cluster.isPrimary ? superviseWebProcesses(config) : main(config)));
