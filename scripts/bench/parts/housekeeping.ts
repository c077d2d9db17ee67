import { MAINTENANCE_JOB_OPTIONS } from '../../../workers/queues/options.js';
import type { Bench } from '../harness.js';
import type { BenchPart } from '../part.js';
import { quantile, type Figure } from '../stats.js';

/** Finished outbox rows past their retention the housekeeping run deletes. */
export const OLD_OUTBOX_ROWS = 100_000;

export interface HousekeepingSample {
  /** PATCH p99 while the outbox-retention task ran, and p99 of the same load without it. */
  during: number;
  without: number;
  /** How long the task ran, and the rows it deleted. */
  taskSeconds: number;
  deleted: number;
}

interface Timed {
  startedAt: number;
  ms: number;
}

/**
 * PATCHes on random sessions from `connections` keep-alive loops until `stop` resolves; each request's
 * start and latency. A loop of its own rather than autocannon, so latencies can be kept for exactly
 * the requests made while the task ran.
 */
async function patchLoop(bench: Bench, range: { first: number; last: number }, connections: number, stop: Promise<unknown>): Promise<Timed[]> {
  let stopped = false;
  void stop.then(() => (stopped = true));
  const samples: Timed[] = [];
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (!stopped) {
        const id = range.first + Math.floor(Math.random() * (range.last - range.first + 1));
        const startedAt = Date.now();
        const res = await fetch(`${bench.webUrl}/api/sessions/${id}`, {
          method: 'PATCH',
          headers: { cookie: bench.user.cookie, 'content-type': 'application/json' },
          body: JSON.stringify({ title: `Housekeeping ${Math.random().toString(36).slice(2, 8)}` }),
        });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`PATCH during housekeeping answered ${res.status}`);
        samples.push({ startedAt, ms: Date.now() - startedAt });
      }
    }),
  );
  return samples;
}

const after = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Seeds {@link OLD_OUTBOX_ROWS} rows finished 30 days ago, then runs the `outbox-retention` task as a
 * one-off job on the maintenance queue (as its scheduler would) under PATCH load. Latencies count
 * for requests started between the job becoming active and finishing; the same load then runs as
 * long again without the task.
 */
export async function housekeepingUnderLoad(bench: Bench, range: { first: number; last: number }, connections: number): Promise<HousekeepingSample> {
  await bench.knex.raw(
    `INSERT INTO job_outbox (queue, job_name, payload, created_at, dispatched_at, finished_at, final_state)
     SELECT 'thumbnails', 'purge', jsonb_build_object('sessionId', g), now() - interval '30 days', now() - interval '30 days', now() - interval '30 days', 'completed'
     FROM generate_series(1, ?) AS g`,
    [OLD_OUTBOX_ROWS],
  );
  await bench.knex.raw('VACUUM ANALYZE sessions, job_outbox');
  const queue = bench.producer.queues.maintenance;
  let finished!: () => void;
  const done = new Promise<void>((r) => (finished = r));
  const load = patchLoop(bench, range, connections, done);
  // The load settles for a moment first; the task then runs, and the load stops when it has ended.
  const job = await after(500).then(() => queue.add('outbox-retention', {}, { ...MAINTENANCE_JOB_OPTIONS, jobId: `bench-retention-${Date.now()}` }));
  const ran = await (async () => {
    for (;;) {
      const state = await queue.getJobState(job.id!);
      if (state === 'failed') throw new Error(`the outbox-retention job failed: ${(await queue.getJob(job.id!))?.failedReason}`);
      if (state === 'completed') return (await queue.getJob(job.id!))!;
      await after(20);
    }
  })().finally(finished);
  const samples = await load;
  const window = samples.filter((s) => s.startedAt >= ran.processedOn! && s.startedAt <= ran.finishedOn!);
  const deleted = (ran.returnvalue as { deleted: number }).deleted;
  if (deleted < OLD_OUTBOX_ROWS) throw new Error(`the outbox-retention job deleted ${deleted} rows, not ${OLD_OUTBOX_ROWS}`);
  if (window.length === 0) throw new Error('no PATCH started while the outbox-retention task ran');

  const taskMs = ran.finishedOn! - ran.processedOn!;
  const quiet = await patchLoop(bench, range, connections, after(Math.max(taskMs, 1000)));
  return {
    during: quantile(window.map((s) => s.ms), 0.99),
    without: quantile(quiet.map((s) => s.ms), 0.99),
    taskSeconds: taskMs / 1000,
    deleted,
  };
}

/** PATCH p99 @`connections` while outbox retention deletes {@link OLD_OUTBOX_ROWS} rows, next to the same load without it. */
async function housekeepingFigures(
  bench: Bench,
  range: { first: number; last: number },
  options: { quick: boolean; reps: number; log: (line: string) => void },
): Promise<Figure[]> {
  const connections = 8;
  const runs: HousekeepingSample[] = [];
  for (let r = 0; r < options.reps; r++) {
    options.log(`housekeeping repetition ${r + 1}/${options.reps} (${OLD_OUTBOX_ROWS.toLocaleString('en')} old outbox rows, PATCH @${connections})`);
    runs.push(await housekeepingUnderLoad(bench, range, connections));
  }
  return [
    {
      name: `PATCH p99 @${connections} during outbox retention`,
      unit: 'ms',
      values: runs.map((s) => s.during),
      baseline: { name: 'PATCH p99, no housekeeping', values: runs.map((s) => s.without) },
      better: 'lower',
    },
    { name: `outbox retention of ${OLD_OUTBOX_ROWS / 1000}k rows under load`, unit: 's', values: runs.map((s) => s.taskSeconds), better: 'lower' },
  ];
}

export const housekeepingPart: BenchPart = {
  name: 'housekeeping',
  measures: 'PATCH p99 @8 while the outbox-retention task deletes 100,000 finished old rows, and how long that takes',
  baseline: 'the same load without it',
  run: async (ctx) => ({ figures: await housekeepingFigures(ctx.bench, await ctx.sessions(), ctx) }),
};
