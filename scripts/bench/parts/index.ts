import type { BenchPart } from '../part.js';
import { completionPart } from './completion.js';
import { databaseLatencyPart } from './database-latency.js';
import { housekeepingPart } from './housekeeping.js';
import { jobStartPart } from './jobstart.js';
import { loginPart } from './login.js';
import { mediaPart } from './media.js';
import { memoryPart } from './memory.js';
import { patchPart } from './patch.js';
import { savePart } from './save.js';
import { scalePart } from './scale.js';
import { snapshotsPart } from './snapshots.js';
import { soakPart } from './soak.js';
import { storesPart } from './stores.js';
import { thumbnailLatencyPart } from './thumbnail-latency.js';
import { thumbnailsPart } from './thumbnails.js';

/**
 * Every part of the bench, in the order a run takes them. The order matters in three places:
 * `memory` reads the peak RSS of what ran before it (and before a login's 128 MiB hash);
 * `completion` restarts the worker; `scale` replaces the small database with a year of data.
 */
export const PARTS: readonly BenchPart[] = [
  patchPart,
  jobStartPart,
  thumbnailsPart,
  thumbnailLatencyPart,
  mediaPart,
  snapshotsPart,
  savePart,
  memoryPart,
  loginPart,
  completionPart,
  housekeepingPart,
  databaseLatencyPart,
  scalePart,
  soakPart,
  storesPart,
];
