import { runMain } from '../../lifecycle.js';
import { runWorker } from '../../workers/worker-process.js';

// The bench's completion part only: a worker whose jobs record no completion on their outbox row
// (and with no reconciler, for which every dispatched row would then look lost). Production has no
// such switch; this entry point exists to measure what the guarantee costs.
await runMain((config) => runWorker(config, { completionRecord: false }));
