import { jobStart, rawJobStart } from '../jobs.js';
import type { BenchPart } from '../part.js';

/** PATCH COMMIT → job active with idle workers, next to BullMQ's own add → active on the same Redis. */
export const jobStartPart: BenchPart = {
  name: 'jobstart',
  measures: "PATCH COMMIT → job active with idle workers (from the job's own BullMQ timestamp, which the fast path stamps in the tick COMMIT resolved), and from the transaction's start",
  baseline: 'BullMQ add → active on the same Redis, an idle no-op worker',
  async run({ bench, quick, reps, log }) {
    const samples = quick ? 30 : 100;
    const start = { p50: [] as number[], p99: [] as number[], txP99: [] as number[] };
    const raw = { p50: [] as number[], p99: [] as number[] };
    log('job start warm-up');
    await jobStart(bench, 5);
    await rawJobStart(bench, 5);
    for (let r = 0; r < reps; r++) {
      log(`job start repetition ${r + 1}/${reps} (${samples} jobs)`);
      const a = await jobStart(bench, samples);
      const b = await rawJobStart(bench, samples);
      start.p50.push(a.commit.p50), start.p99.push(a.commit.p99), start.txP99.push(a.transaction.p99);
      raw.p50.push(b.p50), raw.p99.push(b.p99);
    }
    const baseline = (values: number[]) => ({ name: 'BullMQ add → active', values });
    return {
      figures: [
        { name: 'job start p50', unit: 'ms', values: start.p50, baseline: baseline(raw.p50), better: 'lower' },
        { name: 'job start p99', unit: 'ms', values: start.p99, baseline: baseline(raw.p99), better: 'lower', target: { text: '< 5 ms', met: (s) => s.median < 5 } },
        // The same jobs from their PATCH transaction's start: what the transaction adds before COMMIT.
        { name: 'job start p99, from transaction start', unit: 'ms', values: start.txP99, baseline: baseline(raw.p99), better: 'lower' },
      ],
    };
  },
};
