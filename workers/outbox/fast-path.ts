import type { WrittenOutboxJob } from '../../db/outbox.js';
import { coerceError, type Logger } from '../../logger.js';
import type { OutboxDispatcher } from './dispatcher.js';

/**
 * The API's after-COMMIT dispatch: started without delaying the response, never failing it
 * (undispatched rows are the relay's), and tracked so a graceful shutdown can wait for it.
 *
 * Jobs the transaction hands over are added to their queues from memory, without reading their
 * rows back; the rows are marked dispatched afterwards, one UPDATE per tick for every row added
 * since. A row the relay gets to before its mark is added again under the same job id, which is
 * still one job.
 *
 * One add is on its way at a time: a commit finding none starts it at once, and the jobs of the
 * commits that come while it is out go together in the next (one bulk add per queue, in one write
 * to Redis). Under load that makes one round trip of a few commits' jobs instead of one per commit,
 * and costs a commit at most the wait for the add before it.
 */
export class FastDispatch {
  /** Jobs committed while an add was out, for the next one. */
  private waiting: WrittenOutboxJob[] = [];
  private adding: Promise<void> | undefined;
  private unmarked: number[] = [];
  private marking: Promise<void> | undefined;

  constructor(
    private readonly dispatcher: OutboxDispatcher,
    private readonly logger: Logger,
  ) {}

  submit(written: readonly WrittenOutboxJob[]): void {
    if (written.length === 0) return;
    this.waiting.push(...written);
    this.adding ??= this.addWaiting();
  }

  /** Resolves when every dispatch submitted so far has settled and its rows' marks are written (or failed). */
  async drain(): Promise<void> {
    await this.adding;
    await this.marking;
  }

  /** Adds what is waiting, batch after batch, until nothing is. */
  private async addWaiting(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = this.waiting;
      this.waiting = [];
      try {
        this.mark(await this.dispatcher.addWritten(batch));
      } catch (e) {
        this.logger.warn({ err: coerceError(e), outboxIds: batch.map((r) => r.id) }, 'fast dispatch failed; the relay will retry');
      }
    }
    this.adding = undefined;
  }

  /** Queues the rows for the next batch of marks; one batch is written at a time. */
  private mark(ids: number[]): void {
    if (ids.length === 0) return;
    this.unmarked.push(...ids);
    this.marking ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.flushMarks());
  }

  private async flushMarks(): Promise<void> {
    while (this.unmarked.length > 0) {
      const ids = this.unmarked;
      this.unmarked = [];
      // Unmarked rows are the relay's to add again (the same job id): a failed mark costs a re-add, not a job.
      await this.dispatcher
        .markAdded(ids)
        .catch((e: unknown) => this.logger.warn({ err: coerceError(e), outboxIds: ids }, 'could not mark outbox rows dispatched; the relay will'));
    }
    this.marking = undefined;
  }
}
