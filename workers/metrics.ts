import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { listenMetrics, type MetricsListener } from '../metrics-listener.js';
import type { ReconcileOutcome } from './outbox/reconciler.js';
import type { ProcessorMetrics } from './processors/deps.js';
import type { QueueName } from './queues/contracts.js';

/** A worker process's own metrics: its jobs and their durations, served on a small port. */
export class WorkerMetrics implements ProcessorMetrics {
  readonly registry = new Registry();
  private readonly finished: Counter<'queue' | 'outcome'>;
  private readonly duration: Histogram<'queue' | 'outcome'>;
  private readonly maintenance: Counter<'task'>;
  private readonly reconciled: Counter<'outcome'>;
  private listener: MetricsListener | undefined;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'showrunner_worker_' });
    this.finished = new Counter({
      name: 'showrunner_worker_jobs_total',
      help: 'Jobs this worker process finished, by queue and outcome (a failed attempt counts as failed)',
      labelNames: ['queue', 'outcome'],
      registers: [this.registry],
    });
    this.duration = new Histogram({
      name: 'showrunner_worker_job_duration_seconds',
      help: 'Time from a job becoming active to it finishing, by queue and outcome',
      labelNames: ['queue', 'outcome'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [this.registry],
    });
    this.reconciled = new Counter({
      name: 'showrunner_outbox_reconciled_total',
      help: 'Dispatched, unfinished outbox rows this process reconciled, by outcome (redispatched: Redis had lost the job)',
      labelNames: ['outcome'],
      registers: [this.registry],
    });
    this.maintenance = new Counter({
      name: 'showrunner_maintenance_deleted_total',
      help: 'Rows the scheduled maintenance tasks run by this worker process deleted, by task',
      labelNames: ['task'],
      registers: [this.registry],
    });
  }

  maintenanceDeleted(task: string, rows: number): void {
    this.maintenance.inc({ task }, rows);
  }

  recordReconciled(outcome: ReconcileOutcome): void {
    this.reconciled.inc({ outcome });
  }

  record(queue: QueueName, outcome: 'completed' | 'failed', durationMs: number): void {
    this.finished.inc({ queue, outcome });
    this.duration.observe({ queue, outcome }, Math.max(0, durationMs) / 1000);
  }

  /** Serves `/metrics` on `host`:`port` (0 picks a free one); resolves with the port. */
  async listen(port: number, host: string): Promise<number> {
    this.listener = await listenMetrics({ port, host }, () => this.registry.metrics(), this.registry.contentType);
    return this.listener.port;
  }

  async close(): Promise<void> {
    await this.listener?.close();
  }
}
