import { MetricsTime, WaitingError, type Job, type Worker } from 'bullmq';
import type { Config } from '../config.js';
import { recordOutboxFinished } from '../db/outbox.js';
import { coerceError, type Logger } from '../logger.js';
import { classify, isLastAttempt, jobLogger, type JobCompletion, type ProcessorDeps } from './processors/deps.js';
import { handlerFor, type UntypedHandler } from './processors/index.js';
import { QUEUE_NAMES, parseOutboxJobId, type QueueName } from './queues/contracts.js';
import { createRedis } from './queues/connection.js';
import { PRODUCER_POOL_MAX } from './queues/producer.js';
import { closeStore, createQueuePool, openWorker, type QueueStore } from './queues/store.js';
import { CAPPED_EXPONENTIAL, cappedBackoffStrategy, retryDelayMs, retryPolicyOf } from './queues/retry-policy.js';

export interface WorkerSetOptions {
  redisUrl: string;
  /** Base of the per-queue hash-tagged prefixes (`QUEUE_PREFIX`). */
  queuePrefix: string;
  concurrency: number;
  /** On PostgreSQL: the process's one queue pool ({@link workerQueuePool}), which the Workers share and leave open. */
  store?: QueueStore;
  /** Whether jobs from the outbox record their completion on their row (false only in the bench's measurement of it). */
  completionRecord?: boolean;
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

/** Runs a job's final-failure hook, if it has one; a failing hook is logged, never thrown. */
async function finalFailure(handler: UntypedHandler | undefined, deps: ProcessorDeps, job: Job, error: Error, log: Logger): Promise<void> {
  if (!handler?.onFinalFailure) return;
  await handler.onFinalFailure(deps, job, error).catch((e: unknown) => log.error({ err: coerceError(e) }, 'the final-failure hook failed'));
}

/** The outbox row whose completion this job records: none for a job not from the outbox, or without records (`record` false). */
function completionOf(job: Job, record: boolean): JobCompletion | undefined {
  const outboxId = parseOutboxJobId(job.id);
  return outboxId === undefined || !record ? undefined : { outboxId, recorded: false };
}

/**
 * Writes the job's completion record on its outbox row. A failed write is logged, not thrown: the
 * job's outcome stands, and a lost record costs at worst one harmless re-run by the reconciler,
 * whereas failing a completed job would run it again for sure.
 */
async function recordFinished(
  deps: ProcessorDeps,
  completion: JobCompletion | undefined,
  outcome: { state: 'completed' } | { state: 'failed'; reason: string },
  log: Logger,
): Promise<void> {
  if (!completion) return;
  await recordOutboxFinished(deps.knex, completion.outboxId, outcome).catch((e: unknown) =>
    log.warn({ err: coerceError(e), outcome: outcome.state }, 'could not record the job finished on its outbox row'),
  );
}

/** The final-failure hook, then the failure recorded on the outbox row: the one path of a job failed for good. */
async function failedForGood(handler: UntypedHandler | undefined, deps: ProcessorDeps, job: Job, error: Error, log: Logger, record: boolean): Promise<void> {
  await finalFailure(handler, deps, job, error, log);
  await recordFinished(deps, completionOf(job, record), { state: 'failed', reason: error.message }, log);
}

/**
 * When a transiently failed job runs next, written to its progress: bull-board shows a delayed job's
 * `delay` but not when that delay started, so operators read the time here (and in the log line).
 */
async function noteNextAttempt(deps: ProcessorDeps, job: Job, error: Error, log: Logger): Promise<string | undefined> {
  const backoff = job.opts.backoff;
  if (typeof backoff !== 'object' || backoff.type !== CAPPED_EXPONENTIAL) return undefined;
  const delayMs = retryDelayMs(retryPolicyOf(deps.config), job.attemptsMade + 1);
  const nextAttemptAt = new Date(Date.now() + delayMs).toISOString();
  const retry = { failedAttempt: job.attemptsMade + 1, attempts: job.opts.attempts, nextAttemptAt, delayMs, lastError: error.message.slice(0, 500) };
  await job.updateProgress({ retry }).catch((e: unknown) => log.warn({ err: coerceError(e) }, 'could not record the next attempt on the job'));
  return nextAttemptAt;
}

function processorFor(queue: QueueName, deps: ProcessorDeps, stopping: AbortSignal, record: boolean) {
  return async (job: Job, token?: string): Promise<unknown> => {
    const log = jobLogger(deps.logger, job);
    const handler = handlerFor(queue, job.name);
    if (!handler) throw classify(new Error(`unknown job name "${job.name}" on queue ${queue}`));
    // Per run: a handler whose last write records the completion itself marks it here.
    const completion = completionOf(job, record);
    const jobDeps: ProcessorDeps = { ...deps, logger: log, signal: stopping, ...(completion ? { completion } : {}) };
    log.info({ attempt: job.attemptsMade + 1, data: job.data }, 'job started');
    try {
      const result = await handler.run(jobDeps, job);
      if (!completion?.recorded) await recordFinished(deps, completion, { state: 'completed' }, log);
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
      const final = isLastAttempt(job, error);
      const nextAttemptAt = final ? undefined : await noteNextAttempt(deps, job, error, log);
      log.warn({ err: error, attempt: job.attemptsMade + 1, permanent: error.name === 'UnrecoverableError', final, nextAttemptAt }, 'job failed');
      if (final) await failedForGood(handler, jobDeps, job, error, log, record);
      throw error;
    }
  };
}

/**
 * A worker process's one PostgreSQL queue pool, shared by its Workers and its producer (the relay's):
 * each Worker holds one connection for good (its LISTEN), the jobs' statements get `concurrency` + 2,
 * and the producer its few (docs/operations.md counts them).
 */
export function workerQueuePool(config: Config): QueueStore {
  return { kind: 'postgres', pool: createQueuePool(config, 'showrunner-worker', QUEUE_NAMES.length + config.workerConcurrency + 2 + PRODUCER_POOL_MAX) };
}

/** The store of each queue's Worker: on Redis a connection per queue (each Worker duplicates it for its blocking fetch). */
function workerStores(deps: ProcessorDeps, options: WorkerSetOptions): (queue: QueueName) => QueueStore {
  const shared = options.store ?? (deps.config.queueBackend === 'postgres' ? workerQueuePool(deps.config) : undefined);
  if (shared) return () => shared;
  return (queue) => ({ kind: 'redis', redis: createRedis(options.redisUrl, 'worker', `showrunner-worker-${queue}`, { commandTimeoutMs: deps.config.bounds.redisCommandMs }) });
}

/** One BullMQ Worker per queue, on Redis each on its own blocking connection, on PostgreSQL on one shared pool. */
export function startWorkers(deps: ProcessorDeps, options: WorkerSetOptions): WorkerSet {
  const stores = new Set<QueueStore>();
  const storeOf = workerStores(deps, options);
  const stopping = new AbortController();
  const record = options.completionRecord ?? true;
  const workers = QUEUE_NAMES.map((queue) => {
    const store = storeOf(queue);
    stores.add(store);
    const worker = openWorker(store, options.queuePrefix, queue, processorFor(queue, deps, stopping.signal, record), {
      concurrency: options.concurrency,
      // A job whose worker died (SIGKILL, OOM, lost host) is found by the others' stalled check once
      // its lock lapses, so both follow JOB_LOCK_DURATION_MS (on PostgreSQL too, where BullMQ's
      // own default check is every 30 s).
      lockDuration: deps.config.jobs.lockDurationMs,
      stalledInterval: deps.config.jobs.lockDurationMs,
      // BullMQ's default (1) fails a job the second time its worker dies; crashes are what the
      // recovery is for, so allow a few before calling the job a poison pill.
      maxStalledCount: deps.config.jobs.maxStalledCount,
      autorun: true,
      // Jobs back off with `capped-exponential` (their `attempts` cover JOB_RETRY_HORIZON_MS): the
      // waits are computed here, from the same policy the producer counted the attempts with.
      settings: { backoffStrategy: cappedBackoffStrategy(retryPolicyOf(deps.config)) },
      // BullMQ's own per-minute counts in Redis: the web's /metrics reads job totals from them.
      metrics: { maxDataPoints: MetricsTime.TWO_WEEKS },
    });
    worker.on('error', (err) => deps.logger.warn({ err, queue }, 'worker connection error'));
    worker.on('completed', (job) => options.onJobFinished?.(queue, 'completed', (job.finishedOn ?? Date.now()) - (job.processedOn ?? Date.now())));
    worker.on('failed', (job, err) => {
      if (!job) return;
      options.onJobFinished?.(queue, 'failed', (job.finishedOn ?? Date.now()) - (job.processedOn ?? Date.now()));
      // Failed without reaching the processor (its workers kept dying: JOB_MAX_STALLED_COUNT), so the
      // processor never saw this failure: its final-failure hook runs here instead.
      if (job.deferredFailure) {
        const reason = new Error(`${err.message} (the worker running it died ${job.stalledCounter} times)`);
        void failedForGood(handlerFor(queue, job.name), deps, job, reason, jobLogger(deps.logger, job), record);
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
      // A store the caller gave is the caller's to close (its producer still uses it).
      await Promise.all([...stores].filter((st) => st !== options.store).map(closeStore));
      return inTime;
    },
  };
}
