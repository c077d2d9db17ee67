import { rateAgainstRaw, thumbnails, type Rate } from '../jobs.js';
import type { BenchPart } from '../part.js';
import { rawThumbnailPipeline } from '../raw-jobs.js';
import { median } from '../stats.js';

/**
 * Thumbnail jobs/s next to their matched raw pipeline, alternating: the same preview downloaded,
 * rendered with the job's own settings and uploaded, at the worker's parallelism.
 */
export const thumbnailsPart: BenchPart = {
  name: 'thumbnails',
  measures: "jobs/s from 1920×1080 JPEGs on loopback, listed with Reddit's renditions (the job renders the 640-wide one)",
  baseline: "the same preview downloaded over keep-alive HTTP, sharp with the job's exact settings, the same upload, at the worker's parallelism",
  async run(ctx) {
    const { bench, quick, reps, log } = ctx;
    const count = quick ? 40 : 120;
    const parallelism = bench.config.workerConcurrency;
    const ours: Rate[] = [];
    const raw: Rate[] = [];
    log('thumbnails warm-up');
    await thumbnails(bench, 12);
    await rawThumbnailPipeline(bench, 12, parallelism);
    for (let r = 0; r < reps; r++) {
      log(`thumbnails repetition ${r + 1}/${reps} (${count} jobs)`);
      ours.push(await thumbnails(bench, count));
      raw.push(await rawThumbnailPipeline(bench, count, parallelism));
    }
    ctx.shared.thumbnailsPerSec = median(ours.map((t) => t.perSec));
    const rawName = `download + sharp + upload ×${parallelism}`;
    return rateAgainstRaw({ name: 'thumbnails', ours, rawName, raw, target: 0.85, perOp: 'image' });
  },
};
