import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { pino } from 'pino';
import type { Config } from '../../config.js';
import { OutboxDispatcher } from '../../workers/outbox/dispatcher.js';
import { FastDispatch } from '../../workers/outbox/fast-path.js';
import type { ProcessorDeps } from '../../workers/processors/deps.js';
import type { QueueName } from '../../workers/queues/contracts.js';
import { JobProducer } from '../../workers/queues/producer.js';
import { BlobStore } from '../../workers/storage/blob-storage.js';
import { startAzurite, type AzuriteHandle } from '../../scripts/lib/azurite.js';
import { deleteQueueKeys } from '../../scripts/lib/queue-keys.js';
import { createTestApp, TEST_PROCESS_ENV, testConfig, type TestApp } from './app.js';
import { createKnex, type Knex } from '../../db/knex.js';
import { cloneTestDatabase, dropTestDatabase } from './database.js';
import { startFixtureServer, type FixtureServer } from './fixture-server.js';
import { startWorkerProcess, type WorkerProcess } from './worker-process.js';

export interface JobStackOptions {
  /** Redis for this stack (default: REDIS_URL or the local one). */
  redisUrl?: string;
  /** Extra environment for the web app and the workers. */
  env?: Record<string, string>;
  /** Dispatch outbox rows right after COMMIT, as the web process does (default true). */
  fastPath?: boolean;
  /**
   * An Azurite of the stack's own that keeps its blobs in a folder, so they survive `azurite.stop()`
   * + `restart()`. Without it the stack shares this process's in-memory Azurite (see
   * {@link sharedAzurite}), which it may not stop.
   */
  storageOnDisk?: boolean;
}

/**
 * Everything a job test needs, all real: the app (with the after-COMMIT fast path), an Azurite of its
 * own, a local Reddit/media server, a Redis key prefix of its own, and worker processes on demand.
 */
export interface JobStack {
  t: TestApp;
  /** This stack's own database (a clone of the migrated template). */
  knex: Knex;
  config: Config;
  env: Record<string, string>;
  fixture: FixtureServer;
  /** The stack's Azurite: its own with `storageOnDisk`, else the shared one, whose stop, kill and restart throw. */
  azurite: AzuriteHandle;
  blobs: BlobStore;
  producer: JobProducer;
  fast: FastDispatch;
  /** Processor dependencies, for calling processors directly from a test. */
  deps: ProcessorDeps;
  workers: WorkerProcess[];
  startWorker(env?: Record<string, string>): Promise<WorkerProcess>;
  /** The state and result of the job an outbox row became; `stacktrace` holds its failed attempts' errors, newest last. */
  job(queue: QueueName, outboxId: number): Promise<{ state: string; returnvalue: unknown; failedReason?: string; attemptsMade: number; stacktrace: string[] } | undefined>;
  close(): Promise<void>;
}

/** The run's shared Azurite (`own`, to stop at the end) and what stacks get of it (`lent`). */
let shared: Promise<{ own: AzuriteHandle; lent: AzuriteHandle }> | undefined;

/**
 * One in-memory Azurite for every job stack of this process that does not stop it: an Azurite takes
 * about 2 s to start, and a run starts dozens of stacks. Stacks keep apart by container names of
 * their own, and remove their containers when they close. Stopped by {@link stopSharedAzurite}.
 */
async function sharedAzurite(): Promise<AzuriteHandle> {
  shared ??= startAzurite({ silent: true }).then((own) => {
    const refuse = (): never => {
      throw new Error('this job stack shares the run\'s Azurite: start it with storageOnDisk to have one it may stop');
    };
    // Reads (port, pid, connection string) go through to the real handle; stopping is refused.
    return { own, lent: Object.assign(Object.create(own) as AzuriteHandle, { stop: refuse, kill: refuse, restart: refuse }) };
  });
  return (await shared).lent;
}

/** Stops the shared Azurite, if this process started one (the global teardown). */
export async function stopSharedAzurite(): Promise<void> {
  const started = await shared?.catch(() => undefined);
  shared = undefined;
  await started?.own.stop();
}

export async function startJobStack(options: JobStackOptions = {}): Promise<JobStack> {
  const storageDir = options.storageOnDisk ? mkdtempSync(path.join(os.tmpdir(), 'showrunner-azurite-')) : undefined;
  const [azurite, fixture, databaseUrl] = await Promise.all([
    storageDir ? startAzurite({ silent: true, location: storageDir }) : sharedAzurite(),
    startFixtureServer(),
    cloneTestDatabase(),
  ]);
  const queuePrefix = `srtest-${randomBytes(5).toString('hex')}`;
  const knex = createKnex({ databaseUrl, poolMax: 10, applicationName: 'showrunner-test-stack' });
  const env: Record<string, string> = {
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    REDIS_URL: options.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    QUEUE_PREFIX: queuePrefix,
    AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString,
    // Containers of the stack's own, on an Azurite other stacks may share.
    BLOB_CONTAINER_THUMBNAILS: `${queuePrefix}-thumbnails`,
    BLOB_CONTAINER_SNAPSHOTS: `${queuePrefix}-community`,
    REDDIT_BASE_URL: fixture.baseUrl,
    MEDIA_ALLOW_PRIVATE_HOSTS: 'true',
    SESSION_SECRET: 'test-secret-a,test-secret-b',
    JOB_BACKOFF_MS: '100',
    // Transient failures give up after 100+200+400+400+400 ms of backoff (6 attempts), not hours.
    JOB_MAX_BACKOFF_MS: '400',
    JOB_RETRY_HORIZON_MS: '1500',
    OUTBOX_POLL_INTERVAL_MS: '250',
    OUTBOX_MAX_BACKOFF_MS: '500',
    WORKER_CONCURRENCY: '4',
    SHUTDOWN_GRACE_MS: '10000',
    // Off for the web processes these stacks start; test/rate-limits.test.ts and test/security turn them on.
    API_RATE_LIMIT: '0',
    REGISTER_RATE_LIMIT: '0',
    ...TEST_PROCESS_ENV,
    ...options.env,
  };
  const config = testConfig(env);
  const logger = pino({ level: config.logLevel });
  const blobs = BlobStore.fromConnectionString(config.azureStorageConnectionString, config.blobContainers, { timeoutMs: config.bounds.storageMs });
  await blobs.ensureContainers();
  const producer = JobProducer.fromConfig(config, 'showrunner-test');
  const fast = new FastDispatch(new OutboxDispatcher(knex, producer, logger, { maxBackoffMs: config.outbox.maxBackoffMs }), logger);
  const t = createTestApp({ env, knex, deps: options.fastPath === false ? {} : { afterCommit: (ids) => fast.submit(ids) } });
  const workers: WorkerProcess[] = [];

  return {
    t,
    knex,
    config,
    env,
    fixture,
    azurite,
    blobs,
    producer,
    fast,
    deps: { knex, blobs, config, logger },
    workers,
    async startWorker(extra = {}) {
      const w = await startWorkerProcess({ ...env, ...extra });
      workers.push(w);
      return w;
    },
    async job(queue, outboxId) {
      // State first, then the job: read the other way round, a job finishing in between would show
      // its new state with its old fields.
      const state = await producer.queues[queue].getJobState(`outbox-${outboxId}`);
      const job = await producer.queues[queue].getJob(`outbox-${outboxId}`);
      if (!job || state === 'unknown') return undefined;
      return {
        state,
        returnvalue: job.returnvalue,
        ...(job.failedReason ? { failedReason: job.failedReason } : {}),
        attemptsMade: job.attemptsMade,
        stacktrace: job.stacktrace ?? [],
      };
    },
    async close() {
      await Promise.all(workers.map((w) => w.stop()));
      await fast.drain();
      // Leave nothing of this stack's prefix behind in Redis.
      await producer.close();
      if (config.queueBackend === 'redis') await deleteQueueKeys(config.redisUrl, config.queuePrefix).catch(() => undefined);
      if (storageDir) {
        await Promise.all([azurite.stop(), fixture.close()]);
        rmSync(storageDir, { recursive: true, force: true });
      } else {
        const service = BlobServiceClient.fromConnectionString(config.azureStorageConnectionString);
        await Promise.all([...Object.values(config.blobContainers).map((name) => service.getContainerClient(name).deleteIfExists()), fixture.close()]);
      }
      await knex.destroy();
      await dropTestDatabase(databaseUrl);
    },
  };
}
