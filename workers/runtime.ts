import { MetricsTime, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { coerceError, type Logger } from '../logger.js';
import { classify, jobLogger, type ProcessorDeps } from './processors/deps.js';
import { syncMedia } from './processors/media.js';
import { createSnapshot, markSnapshotFailed, purgeSnapshot } from './processors/snapshots.js';
import { generateThumbnail, purgeThumbnails } from './processors/thumbnails.js';
import type { JobPayload, QueueName } from './queues/contracts.js';
import { createRedis } from './queues/connection.js';

type Handler = (deps: ProcessorDeps, job: Job) => Promise<unknown>;

/** Which function runs each job name of each queue. */
const HANDLERS: Record<QueueName, Record<string, Handler>> = {
  media: { sync: (d, j) => syncMedia(d, j as Job<JobPayload<'media', 'sync'>>) },
  thumbnails: {
    generate: (d, j) => generateThumbnail(d, j as Job<JobPayload<'thumbnails', 'generate'>>),
    purge: (d, j) => purgeThumbnails(d, j as Job<JobPayload<'thumbnails', 'purge'>>),
  },
  snapshots: {
    create: (d, j) => createSnapshot(d, j as Job<JobPayload<'snapshots', 'create'>>),
    purge: (d, j) => purgeSnapshot(d, j as Job<JobPayload<'snapshots', 'purge'>>),
  },
};

export interface WorkerSetOptions {
  redisUrl: string;
  queuePrefix: string;
  concurrency: number;
  /** Observers for metrics: called once per finished job. */
  onJobFinished?: (queue: QueueName, outcome: 'completed' | 'failed', durationMs: number) => void;
}

export interface WorkerSet {
  workers: Worker[];
  /**
   * Stops taking jobs and lets active ones finish for up to `graceMs`; then aborts them, which
   * returns each to its queue, and closes the connections. Resolves true if everything finished in time.
   */
  close(graceMs: number): Promise<boolean>;
}

function processorFor(queue: QueueName, deps: ProcessorDeps, logger: Logger, stopping: AbortSignal) {
  return async (job: Job, token?: string): Promise<unknown> => {
    const log = jobLogger(logger, job);
    const handler = HANDLERS[queue][job.name];
    if (!handler) throw classify(new Error(`unknown job name "${job.name}" on queue ${queue}`));
    log.info({ attempt: job.attemptsMade + 1, data: job.data }, 'job started');
    try {
      const result = await handler({ ...deps, logger: log, signal: stopping }, job);
      log.info({ result }, 'job completed');
      return result;
    } catch (e) {
      if (stopping.aborted) {
        // Shutting down past the grace period: hand the job back to the queue without spending an
        // attempt; it is idempotent, so the next worker resumes it.
        await job.moveToWait(token);
        log.warn('job returned to its queue at shutdown');
        throw new WaitingError();
      }
      const error = classify(e);
      log.warn({ err: error, attempt: job.attemptsMade + 1, permanent: error.name === 'UnrecoverableError' }, 'job failed');
      throw error;
    }
  };
}

/** One BullMQ Worker per queue, each on its own blocking connection. */
export function startWorkers(deps: ProcessorDeps, options: WorkerSetOptions): WorkerSet {
  const connections: Redis[] = [];
  const stopping = new AbortController();
  const queues: QueueName[] = ['media', 'thumbnails', 'snapshots'];
  const workers = queues.map((queue) => {
    const connection = createRedis(options.redisUrl, 'worker', `showrunner-worker-${queue}`);
    connections.push(connection);
    const worker = new Worker(queue, processorFor(queue, deps, deps.logger, stopping.signal), {
      connection,
      prefix: options.queuePrefix,
      concurrency: options.concurrency,
      // A job whose worker died (SIGKILL, OOM, lost host) is found by the others' stalled check once
      // its lock lapses, so both follow JOB_LOCK_DURATION_MS.
      lockDuration: deps.config.jobs.lockDurationMs,
      stalledInterval: deps.config.jobs.lockDurationMs,
      // BullMQ's default (1) fails a job the second time its worker dies; crashes are what the
      // recovery is for, so allow a few before calling the job a poison pill.
      maxStalledCount: deps.config.jobs.maxStalledCount,
      autorun: true,
      // BullMQ's own per-minute counts in Redis: the web's /metrics reads job totals from them.
      metrics: { maxDataPoints: MetricsTime.TWO_WEEKS },
    });
    worker.on('error', (err) => deps.logger.warn({ err, queue }, 'worker connection error'));
    worker.on('completed', (job) => options.onJobFinished?.(queue, 'completed', (job.finishedOn ?? Date.now()) - (job.processedOn ?? Date.now())));
    worker.on('failed', (job, err) => {
      if (!job) return;
      options.onJobFinished?.(queue, 'failed', (job.finishedOn ?? Date.now()) - (job.processedOn ?? Date.now()));
      // Failed without reaching the processor (its workers kept dying: JOB_MAX_STALLED_COUNT), so the
      // processor's own failure handling never ran: a snapshot would otherwise stay `copying` forever.
      if (queue === 'snapshots' && job.name === 'create' && job.deferredFailure) {
        const { snapshotId } = job.data as JobPayload<'snapshots', 'create'>;
        markSnapshotFailed(deps, snapshotId, `${err.message} (the worker running it died ${job.stalledCounter} times)`).catch((e: unknown) =>
          deps.logger.error({ err: coerceError(e), snapshotId }, 'could not mark the snapshot failed'),
        );
      }
    });
    return worker;
  });
  return {
    workers,
    async close(graceMs) {
      const closing = Promise.all(workers.map((w) => w.close()));
      let timer: NodeJS.Timeout | undefined;
      const inTime = await Promise.race([
        closing.then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
      ]);
      clearTimeout(timer);
      if (!inTime) {
        deps.logger.warn({ graceMs }, 'grace period over: returning unfinished jobs to their queues');
        stopping.abort(new Error('worker shutting down'));
        await closing;
      }
      for (const c of connections) c.disconnect();
      return inTime;
    },
  };
}
