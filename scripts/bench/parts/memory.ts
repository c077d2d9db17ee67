import { peakRssMb } from '../harness.js';
import type { BenchPart } from '../part.js';

/** Peak RSS of the web and worker processes over the run so far (every run reports it). */
export const memoryPart: BenchPart = {
  name: 'memory',
  measures: 'peak RSS of the web (its largest process) and of the worker over the run so far',
  baseline: '-',
  runs: 'always',
  async run({ bench, shared }) {
    // The web's supervisor holds little; the figure is its largest serving process.
    const web = peakRssMb(bench.web.child.pid);
    const worker = Math.max(shared.workerPeakMb ?? 0, ...peakRssMb(bench.worker.child.pid));
    return {
      figures: [
        { name: `web peak RSS (largest of ${web.length} processes)`, unit: 'MB', values: [Math.max(...web)], better: 'lower' },
        { name: 'worker peak RSS', unit: 'MB', values: [worker], better: 'lower', target: { text: '< 300 MB', met: (s) => s.median < 300 } },
      ],
    };
  },
};
