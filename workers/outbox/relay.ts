import pg from 'pg';
import { pgConnectionSettings, type DatabaseBounds } from '../../db/knex.js';
import { listenForOutboxRows } from '../../db/outbox.js';
import { coerceError, type Logger } from '../../logger.js';
import type { OutboxDispatcher } from './dispatcher.js';

/**
 * NOTIFYs within this window fold into one pass. The API dispatches its own rows right after
 * COMMIT, so under a burst of PATCHes a pass per NOTIFY would mostly race it for rows it is
 * about to send anyway; one pass per window still picks up what it could not send.
 */
const NOTIFY_COALESCE_MS = 200;

export interface RelayOptions {
  databaseUrl: string;
  /** The LISTEN connection's deadlines, as the pool's. */
  databaseBounds: DatabaseBounds;
  /** Safety-net poll, for rows whose NOTIFY was missed or whose backoff has passed. */
  pollIntervalMs: number;
  batchSize: number;
}

/**
 * Re-dispatches outbox rows nobody dispatched (Redis was down, a web process died after COMMIT).
 * Wakes on `LISTEN job_outbox` (the table's insert trigger notifies at COMMIT) and on a slow poll.
 * Several relays may run at once: the dispatcher's row locks keep each row to one job.
 */
export class OutboxRelay {
  private listener: pg.Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private notified: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly dispatcher: OutboxDispatcher,
    private readonly logger: Logger,
    private readonly options: RelayOptions,
  ) {}

  async start(): Promise<void> {
    this.stopped = false;
    await this.listen();
    this.schedule(0);
  }

  /** Runs until no due row is left; overlapping wake-ups fold into one more pass. */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.notified);
    await this.running;
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
  }

  private onNotification(): void {
    if (this.notified || this.stopped) return;
    this.notified = setTimeout(() => {
      this.notified = undefined;
      this.wake();
    }, NOTIFY_COALESCE_MS);
    this.notified.unref();
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.wake();
      this.schedule(this.options.pollIntervalMs);
    }, delayMs);
    this.timer.unref();
  }

  private async drain(): Promise<void> {
    try {
      for (;;) {
        const { dispatched, failed } = await this.dispatcher.dispatchDue(this.options.batchSize);
        if (dispatched > 0) this.logger.info({ dispatched }, 'relay dispatched outbox rows');
        // A failed batch (Redis down) waits for its backoff instead of spinning.
        if (failed > 0 || dispatched < this.options.batchSize || this.stopped) return;
      }
    } catch (e) {
      this.logger.warn({ err: coerceError(e) }, 'relay pass failed; the poll will try again');
    }
  }

  /** A dedicated connection for LISTEN, re-established after it drops. */
  private async listen(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client(pgConnectionSettings({ databaseUrl: this.options.databaseUrl, applicationName: 'showrunner-relay', bounds: this.options.databaseBounds }));
    client.on('notification', () => this.onNotification());
    client.on('error', (err) => {
      this.logger.warn({ err }, 'relay LISTEN connection lost; reconnecting');
      if (this.listener === client) this.listener = undefined;
      client.end().catch(() => undefined);
      setTimeout(() => void this.listen().catch(() => undefined), 1_000).unref();
    });
    try {
      await client.connect();
      await listenForOutboxRows(client);
      this.listener = client;
    } catch (e) {
      this.logger.warn({ err: coerceError(e) }, 'relay could not LISTEN; polling only until it can');
      client.end().catch(() => undefined);
      setTimeout(() => void this.listen().catch(() => undefined), 2_000).unref();
    }
  }
}
