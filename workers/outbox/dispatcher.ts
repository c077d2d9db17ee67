import type { Knex } from '../../db/knex.js';
import { claimUndispatched, markDispatched, recordDispatchFailure, type OutboxClaim, type WrittenOutboxJob } from '../../db/outbox.js';
import { coerceError, type Logger } from '../../logger.js';
import { isOutboxQueueName, outboxJobId, type OutboxQueueName } from '../queues/contracts.js';
import type { JobProducer } from '../queues/producer.js';

export interface DispatchResult {
  dispatched: number;
  failed: number;
}

export interface DispatcherOptions {
  /** Longest wait before a failed row is tried again. */
  maxBackoffMs: number;
}

/**
 * Moves outbox rows to BullMQ. Rows are claimed with `FOR UPDATE SKIP LOCKED` inside a short
 * transaction, added to their queues under the job id `outbox-<id>`, then marked dispatched, so any
 * number of API and relay processes can dispatch at once and each row becomes one job. If Redis
 * fails, the rows stay undispatched with the attempt count, the error and a backoff recorded.
 */
export class OutboxDispatcher {
  constructor(
    private readonly knex: Knex,
    private readonly producer: JobProducer,
    private readonly logger: Logger,
    private readonly options: DispatcherOptions,
  ) {}

  /** The fast path: the rows a transaction just committed. */
  async dispatchIds(ids: number[]): Promise<DispatchResult> {
    if (ids.length === 0) return { dispatched: 0, failed: 0 };
    return this.claimAndDispatch({ ids });
  }

  /**
   * The fast path: adds jobs a transaction of this process just committed, straight from memory,
   * and returns the ids of the rows it added; marking them dispatched is the caller's, later. No
   * row is read or locked: a relay that adds one of them too uses the same job id, so it is still
   * one job. On failure the rows get the same backoff as a failed claim; rows naming a queue this
   * dispatcher does not know are left for the relay, which records why.
   */
  async addWritten(jobs: WrittenOutboxJob[]): Promise<number[]> {
    const valid = jobs.filter((j) => isOutboxQueueName(j.queue));
    if (valid.length === 0 || !this.producer.isReady()) return [];
    const ids = valid.map((j) => j.id);
    return (await this.add(this.knex, valid, ids)) ? ids : [];
  }

  /** Marks rows `addWritten` added as dispatched (one statement for any number of them). */
  async markAdded(ids: number[]): Promise<void> {
    await markDispatched(this.knex, ids);
  }

  /** The relay's path: up to `limit` rows that are due, oldest first. */
  async dispatchDue(limit: number): Promise<DispatchResult> {
    return this.claimAndDispatch({ dueLimit: limit });
  }

  private async claimAndDispatch(claim: OutboxClaim): Promise<DispatchResult> {
    // With Redis down, holding row locks and a pooled connection while waiting for it would starve
    // the API's own transactions: leave the rows for a later pass instead.
    if (!this.producer.isReady()) return { dispatched: 0, failed: 0 };
    return this.knex.transaction(async (trx) => {
      const rows = await claimUndispatched(trx, claim);
      if (rows.length === 0) return { dispatched: 0, failed: 0 };
      // Only the outbox's own queues: a row naming any other (or a scheduled-only queue) is an error to record.
      const unknown = rows.filter((r) => !isOutboxQueueName(r.queue));
      const valid = rows.filter((r) => isOutboxQueueName(r.queue));
      const jobs = valid.map((r) => ({ id: r.id, queue: r.queue, name: r.job_name, payload: r.payload }));
      if (!(await this.add(trx, jobs, rows.map((r) => r.id)))) return { dispatched: 0, failed: rows.length };
      if (unknown.length > 0) await recordDispatchFailure(trx, unknown.map((r) => r.id), 'unknown queue', this.options.maxBackoffMs);
      await markDispatched(trx, valid.map((r) => r.id));
      return { dispatched: valid.length, failed: unknown.length };
    });
  }

  /**
   * Adds the jobs under their rows' ids (`outbox-<id>`). When Redis refuses them, records the error
   * and the backoff on the `failing` rows (in `db`, the caller's transaction if it holds them) and
   * answers false.
   */
  private async add(db: Knex, jobs: WrittenOutboxJob[], failing: number[]): Promise<boolean> {
    try {
      await this.producer.addAll(jobs.map((j) => ({ queue: j.queue as OutboxQueueName, name: j.name, data: j.payload, jobId: outboxJobId(j.id) })));
    } catch (e) {
      const error = coerceError(e);
      await recordDispatchFailure(db, failing, error.message, this.options.maxBackoffMs);
      this.logger.warn({ err: error, outboxIds: failing }, 'outbox dispatch failed; rows stay queued for the relay');
      return false;
    }
    for (const j of jobs) this.logger.debug({ outboxId: j.id, queue: j.queue, jobName: j.name, jobId: outboxJobId(j.id) }, 'outbox row dispatched');
    return true;
  }
}
