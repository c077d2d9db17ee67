import { startServiceProcess } from '../../lib/child-process.js';
import type { Bench } from '../harness.js';
import { jobStart, thumbnails } from '../jobs.js';
import type { BenchPart } from '../part.js';
import type { Figure } from '../stats.js';

/**
 * Replaces the bench's worker with one from the same build and environment, with completion records
 * (the production worker) or without them: the bench's own entry point for that
 * (scripts/bench/worker-without-record.ts), which no deployment runs.
 */
export async function restartWorkerWithRecord(bench: Bench, record: 'on' | 'off'): Promise<void> {
  await bench.worker.stop();
  const entry = record === 'on' ? 'workers/main.ts' : 'scripts/bench/worker-without-record.ts';
  bench.worker = await startServiceProcess(entry, bench.env, '"worker started"', { timeoutMs: 60_000, compiled: true });
}

/**
 * What the completion record costs: job start p99 and thumbnail throughput with the worker restarted
 * with the record off, then on, in turn for each repetition (so drift on a shared machine falls on
 * both alike). Each row's baseline is the same figure with the record off.
 */
async function completionFigures(bench: Bench, options: { quick: boolean; reps: number; log: (line: string) => void }): Promise<Figure[]> {
  const samples = options.quick ? 30 : 100;
  const thumbCount = options.quick ? 40 : 120;
  const p99 = { on: [] as number[], off: [] as number[] };
  const rate = { on: [] as number[], off: [] as number[] };
  let current: 'on' | 'off' = 'on';
  try {
    for (let r = 0; r < options.reps; r++) {
      for (const record of ['off', 'on'] as const) {
        options.log(`completion record ${record}: repetition ${r + 1}/${options.reps} (restarting the worker)`);
        current = record;
        await restartWorkerWithRecord(bench, record);
        await jobStart(bench, 5);
        await thumbnails(bench, 12);
        p99[record].push((await jobStart(bench, samples)).commit.p99);
        rate[record].push((await thumbnails(bench, thumbCount)).perSec);
      }
    }
  } finally {
    // A failure with the record off must not leave that worker to the later parts: the scale part's
    // relay pass waits for completion records it would never write (a full run hung so).
    if (current === 'off') await restartWorkerWithRecord(bench, 'on');
  }
  return [
    { name: 'job start p99, completion record on', unit: 'ms', values: p99.on, baseline: { name: 'record off', values: p99.off }, better: 'lower' },
    { name: 'thumbnails, completion record on', unit: 'jobs/s', values: rate.on, baseline: { name: 'record off', values: rate.off }, better: 'higher' },
  ];
}

export const completionPart: BenchPart = {
  name: 'completion',
  measures: 'what the outbox completion record costs: job start p99 and thumbnails/s with the production worker (records on)',
  baseline: "the same with the bench's worker without records (its own entry point), restarted in turn",
  // Three repetitions at most: each restarts the worker twice.
  run: async (ctx) => ({ figures: await completionFigures(ctx.bench, { ...ctx, reps: Math.min(ctx.reps, 3) }) }),
};
