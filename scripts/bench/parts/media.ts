import { mediaSyncs, rateAgainstRaw, unsyncedSessions, type Rate } from '../jobs.js';
import type { BenchPart } from '../part.js';
import { rawMediaSync } from '../raw-jobs.js';

/** Media sync jobs/s next to their matched raw work, alternating: the same listing fetched and parsed, the same rows written. */
export const mediaPart: BenchPart = {
  name: 'media',
  measures: 'media sync jobs/s: a listing of 100 posts with their renditions fetched from the media host and written as the session\'s media',
  baseline: "the same listing fetched over keep-alive HTTP and parsed by the job's parser, the same rows written in one transaction (delete, insert, media_subreddits), at the worker's parallelism",
  async run({ bench, quick, reps, log }) {
    const count = quick ? 30 : 100;
    const parallelism = bench.config.workerConcurrency;
    const ours: Rate[] = [];
    const raw: Rate[] = [];
    log('media sync warm-up');
    await mediaSyncs(bench, 8);
    await rawMediaSync(bench, await unsyncedSessions(bench, 8), parallelism);
    for (let r = 0; r < reps; r++) {
      log(`media sync repetition ${r + 1}/${reps} (${count} syncs)`);
      ours.push(await mediaSyncs(bench, count));
      raw.push(await rawMediaSync(bench, await unsyncedSessions(bench, count), parallelism));
    }
    const rawName = `fetch + parse + insert ×${parallelism}`;
    return rateAgainstRaw({ name: 'media sync', ours, rawName, raw, target: 0.85, perOp: 'sync' });
  },
};
