import { runMain } from '../lifecycle.js';
import { runWorker } from './worker-process.js';

await runMain((config) => runWorker(config));
