import { coerceError, type Logger } from '../../logger.js';
import type { OutboxDispatcher } from './dispatcher.js';

/**
 * The API's after-COMMIT dispatch: started without delaying the response, never failing it
 * (undispatched rows are the relay's), and tracked so a graceful shutdown can wait for it.
 */
export class FastDispatch {
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly dispatcher: OutboxDispatcher,
    private readonly logger: Logger,
  ) {}

  submit(outboxIds: number[]): void {
    if (outboxIds.length === 0) return;
    const p = this.dispatcher
      .dispatchIds(outboxIds)
      .then(() => undefined)
      .catch((e: unknown) => this.logger.warn({ err: coerceError(e), outboxIds }, 'fast dispatch failed; the relay will retry'))
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  /** Resolves when every dispatch started so far has settled. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }
}
