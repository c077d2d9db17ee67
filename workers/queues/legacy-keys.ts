import { randomUUID } from 'node:crypto';
import { Queue, type Job } from 'bullmq';
import { coerceError, type Logger } from '../../logger.js';
import { QUEUE_NAMES, legacyQueueKeyPrefix, type QueueName } from './contracts.js';
import type { JobProducer } from './producer.js';

/** The states of a job not yet run: what an upgrade must not strand under the old keys. */
const PENDING_STATES = ['waiting', 'prioritized', 'delayed'] as const;
/** Long enough for a large backlog; a worker that dies holding it only delays the move to the next start. */
const LOCK_TTL_MS = 10 * 60_000;
const BATCH = 200;
const RELEASE_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

export interface LegacyMove {
  /** False when another worker held the lock (it does the moving). */
  ranHere: boolean;
  moved: Partial<Record<QueueName, number>>;
}

/** When a delayed job was due: its delayed-set score is the due time in ms × 0x1000 (BullMQ's `getDelayedScore`). */
async function dueAt(producer: JobProducer, queue: Queue, job: Job): Promise<number> {
  const score = await producer.redis.zscore(queue.keys.delayed!, job.id!);
  return score === null ? Date.now() : Math.floor(Number(score) / 0x1000);
}

/**
 * Moves one job: added to the new queue under the same job id (a second add of an id BullMQ knows is
 * ignored), then removed from the old keys. Added first: a crash in between leaves the job in both
 * places, and since every job is idempotent a second run is harmless where a lost job is not.
 * Attempts already spent stay spent.
 */
async function moveJob(producer: JobProducer, old: Queue, target: Queue, job: Job, state: string): Promise<void> {
  const delay = state === 'delayed' ? Math.max(0, (await dueAt(producer, old, job)) - Date.now()) : 0;
  const attempts = Math.max(1, (job.opts.attempts ?? 1) - job.attemptsMade);
  await target.add(job.name, job.data, { ...job.opts, jobId: job.id!, delay, attempts, ...(job.priority ? { priority: job.priority } : {}) });
  await job.remove();
}

/**
 * The upgrade from one shared hash tag (`{showrunner}:<queue>:…`) to one per queue
 * (`{showrunner:<queue>}:<queue>:…`): jobs still waiting (or paused), delayed or prioritized under the old
 * keys are moved to the new ones before this worker starts taking jobs. One worker at a time moves
 * (a Redis lock, `SET NX PX`); workers starting together skip it, and a worker that finds the lock held
 * leaves any rest to the next start. Active jobs of old workers still running are left to them.
 */
export async function moveLegacyJobs(producer: JobProducer, base: string, logger: Logger): Promise<LegacyMove> {
  const oldPrefix = legacyQueueKeyPrefix(base);
  const lockKey = `${oldPrefix}:upgrade-lock`;
  const token = randomUUID();
  if ((await producer.redis.set(lockKey, token, 'PX', LOCK_TTL_MS, 'NX')) !== 'OK') {
    logger.info({ lockKey }, 'another worker is moving jobs from the old queue keys; not moving here');
    return { ranHere: false, moved: {} };
  }
  const moved: LegacyMove['moved'] = {};
  try {
    for (const name of QUEUE_NAMES) {
      const old = new Queue(name, { connection: producer.redis, prefix: oldPrefix });
      old.on('error', () => undefined);
      try {
        let count = 0;
        for (const state of PENDING_STATES) {
          for (let jobs = await old.getJobs([state], 0, BATCH - 1, true); jobs.length > 0; jobs = await old.getJobs([state], 0, BATCH - 1, true)) {
            for (const job of jobs) {
              await moveJob(producer, old, producer.queues[name], job, state).catch((e: unknown) => {
                // An old worker took it meanwhile: it runs there, and maybe once more here (idempotent).
                logger.warn({ err: coerceError(e), queue: name, jobId: job.id }, 'could not remove a moved job from the old keys');
              });
              count += 1;
            }
            if (jobs.length < BATCH) break;
          }
        }
        if (count > 0) {
          moved[name] = count;
          logger.warn({ queue: name, moved: count, from: `${oldPrefix}:${name}`, to: producer.queues[name].qualifiedName }, 'moved jobs from the old queue keys');
        }
      } finally {
        await old.close();
      }
    }
  } finally {
    await producer.redis.eval(RELEASE_LOCK, 1, lockKey, token).catch(() => undefined);
  }
  return { ranHere: true, moved };
}
