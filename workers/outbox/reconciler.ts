import type { Knex } from '../../db/knex.js';
import { claimUnfinished, markRedispatched, recordOutboxFinished } from '../../db/outbox.js';
import type { OutboxRow } from '../../db/types.js';
import { coerceError, type Logger } from '../../logger.js';
import { isQueueName, outboxJobId, type QueueName } from '../queues/contracts.js';
import type { JobProducer } from '../queues/producer.js';

/** What a pass did with a row: `in-redis` rows (waiting, delayed, active …) are left alone. */
export const RECONCILE_OUTCOMES = ['redispatched', 'completed', 'failed', 'in-redis'] as const;
export type ReconcileOutcome = (typeof RECONCILE_OUTCOMES)[number];
export type ReconcileResult = Record<ReconcileOutcome, number>;

export interface ReconcilerOptions {
  /** Rows dispatched longer ago than this and not finished are checked (`OUTBOX_RECONCILE_AFTER_MS`). */
  afterMs: number;
  /** Time between passes (`OUTBOX_RECONCILE_INTERVAL_MS`). */
  intervalMs: number;
  /** Rows per claiming transaction. */
  batchSize: number;
  /** Observer for metrics: called once per row a pass decided on. */
  onReconciled?: (outcome: ReconcileOutcome) => void;
}

const none = (): ReconcileResult => ({ redispatched: 0, completed: 0, failed: 0, 'in-redis': 0 });

/**
 * Keeps Postgres the system of record after dispatch (docs/architecture.md §3). Rows dispatched a while ago and not
 * finished are claimed with `FOR UPDATE SKIP LOCKED` in a short transaction, so any number of worker
 * processes reconcile at once and each row is decided by one. Each row's job `outbox-<id>` is looked
 * up in Redis: a job Redis no longer has is dispatched again under the same id; a job Redis still
 * holds in any live state is left alone, so a slow job never runs twice; a finished job whose record
 * was lost gets it now.
 */
export class OutboxReconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = true;

  constructor(
    private readonly knex: Knex,
    private readonly producer: JobProducer,
    private readonly logger: Logger,
    private readonly options: ReconcilerOptions,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One pass over every row due for a check, in batches by id; resolves with what it did. */
  async reconcile(): Promise<ReconcileResult> {
    const total = none();
    // A cursor, not "the oldest N": rows left alone (slow jobs) keep their dispatch time, and would
    // otherwise fill every batch and hide the lost jobs behind them.
    let afterId = 0;
    for (;;) {
      const batch = await this.reconcileBatch(afterId);
      if (!batch) return total;
      // Counted once the batch committed: a rolled-back batch decided nothing.
      for (const outcome of RECONCILE_OUTCOMES) {
        total[outcome] += batch.result[outcome];
        for (let n = 0; n < batch.result[outcome]; n++) this.options.onReconciled?.(outcome);
      }
      afterId = batch.lastId;
      if (batch.claimed < this.options.batchSize || this.stopped) return total;
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.reconcile()
        .then((result) => {
          if (result.redispatched > 0) this.logger.warn({ ...result }, 'reconciler dispatched again jobs Redis no longer had');
          else if (result.completed + result.failed > 0) this.logger.info({ ...result }, 'reconciler recorded finished jobs');
        })
        .catch((e: unknown) => this.logger.warn({ err: coerceError(e) }, 'reconcile pass failed; the next pass will try again'))
        .finally(() => {
          this.running = undefined;
          this.schedule();
        });
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /** Null when there is nothing to do or Redis cannot be asked. */
  private async reconcileBatch(afterId: number): Promise<{ claimed: number; lastId: number; result: ReconcileResult } | null> {
    // With Redis unreachable every job would look lost: decide nothing, hold no locks, wait for it.
    if (!this.producer.isReady()) return null;
    return this.knex.transaction(async (trx) => {
      const rows = await claimUnfinished(trx, this.options.afterMs, this.options.batchSize, afterId);
      if (rows.length === 0) return null;
      const result = none();
      const lost: OutboxRow[] = [];
      // Every lookup before any write: one failed lookup rolls the batch back untouched.
      const states = await Promise.all(rows.map((r) => this.lookUp(r)));
      for (const [i, row] of rows.entries()) {
        const state = states[i];
        // A queue this build does not know is not ours to judge (a newer release wrote it).
        if (!state) continue;
        let outcome: ReconcileOutcome;
        if (state.state === 'unknown') {
          lost.push(row);
          outcome = 'redispatched';
        } else if (state.state === 'completed') {
          await recordOutboxFinished(trx, row.id, { state: 'completed' });
          outcome = 'completed';
        } else if (state.state === 'failed') {
          // BullMQ's `failed` is final: a job that will be retried waits as `delayed`.
          await recordOutboxFinished(trx, row.id, { state: 'failed', reason: state.failedReason ?? 'failed in BullMQ' });
          outcome = 'failed';
        } else {
          outcome = 'in-redis';
        }
        result[outcome] += 1;
      }
      if (lost.length > 0) {
        // The same job id: should Redis still get the first copy back (a replica catching up), the
        // add is ignored. A failed add throws and rolls the batch back; the next pass tries again.
        await this.producer.addAll(
          lost.map((r) => ({ queue: r.queue as QueueName, name: r.job_name, data: r.payload, jobId: outboxJobId(r.id) })),
        );
        // dispatched_at restarts, so the row is looked at again only a full reconcile age later.
        await markRedispatched(trx, lost.map((r) => r.id));
        this.logger.warn({ outboxIds: lost.map((r) => r.id) }, 'Redis no longer had these jobs: dispatched again');
      }
      return { claimed: rows.length, lastId: rows[rows.length - 1]!.id, result };
    });
  }

  private async lookUp(row: OutboxRow): Promise<{ state: string; failedReason?: string } | undefined> {
    if (!isQueueName(row.queue)) return undefined;
    const queue = this.producer.queues[row.queue];
    const id = outboxJobId(row.id);
    const state = await queue.getJobState(id);
    if (state !== 'failed') return { state };
    const job = await queue.getJob(id);
    return { state, ...(job?.failedReason ? { failedReason: job.failedReason } : {}) };
  }
}
