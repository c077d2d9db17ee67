import type { CpuShare } from '../harness.js';
import { peakRssMb } from '../harness.js';
import { bigSnapshotPeakRss, expireMediaSources, snapshot } from '../jobs.js';
import type { BenchPart } from '../part.js';
import { rawCopy, rawSnapshot } from '../raw-jobs.js';
import type { Figure } from '../stats.js';

/**
 * Snapshot copies next to raw copies of the same bytes (download, sha256, upload) at the same
 * parallelism, alternating; re-shares next to raw uploads; and the worker's peak RSS on 8 × 25 MB.
 */
export const snapshotsPart: BenchPart = {
  name: 'snapshots',
  measures:
    "media/s and MB/s of a snapshot's first copies, 100 × 500 KB; re-shares of the same media while their sources' max-age runs, and once it ran out; worker peak RSS copying 8 × 25 MB",
  baseline: 'raw copies: the same bytes downloaded from the same media host, hashed with sha256 and uploaded with the SDK, same parallelism; re-shares: raw uploads of bytes in memory',
  async run(ctx) {
    const { bench, reps, log } = ctx;
    const items = 100;
    const parallelism = bench.config.jobs.snapshotCopyParallelism;
    const snaps = { items: [] as number[], mb: [] as number[], cpu: [] as CpuShare[] };
    const uploads = { items: [] as number[], cpu: [] as CpuShare[] };
    const copies = { items: [] as number[], mb: [] as number[], cpu: [] as CpuShare[] };
    const reshares: number[] = [];
    const revalidated: number[] = [];
    log('snapshot warm-up');
    const warmUp = 99; // its own media and blob names, apart from the repetitions'
    await snapshot(bench, 20, warmUp);
    await rawSnapshot(bench, 20, parallelism, warmUp);
    await rawCopy(bench, 20, parallelism, warmUp + 100);
    for (let r = 0; r < reps; r++) {
      log(`snapshot repetition ${r + 1}/${reps} (${items} × 500 KB)`);
      const a = await snapshot(bench, items, r);
      // Its own media (rep + 100), so nothing it downloads was served before.
      const c = await rawCopy(bench, items, parallelism, r + 100);
      const b = await rawSnapshot(bench, items, parallelism, r);
      // The same media in another session: every byte is stored already, nothing is uploaded; the
      // sources' max-age still runs, so none is asked. Then again once it has run out: each is asked (a 304).
      reshares.push((await snapshot(bench, items, r)).itemsPerSec);
      await expireMediaSources(bench);
      revalidated.push((await snapshot(bench, items, r)).itemsPerSec);
      snaps.items.push(a.itemsPerSec), snaps.mb.push(a.mbPerSec), snaps.cpu.push(a.cpu);
      copies.items.push(c.itemsPerSec), copies.mb.push(c.mbPerSec), copies.cpu.push(c.cpu);
      uploads.items.push(b.itemsPerSec), uploads.cpu.push(b.cpu);
    }
    const copiesName = `raw copies ×${parallelism}`;
    const uploadsName = `blob uploads ×${parallelism}`;
    const againstUploads = (name: string, values: number[], target?: Figure['target']): Figure => ({
      name,
      unit: 'media/s',
      values,
      baseline: { name: uploadsName, values: uploads.items },
      better: 'higher',
      ...(target ? { target } : {}),
    });
    const figures: Figure[] = [
      {
        name: 'snapshot first copies',
        unit: 'media/s',
        values: snaps.items,
        baseline: { name: copiesName, values: copies.items },
        better: 'higher',
        target: { text: 'ratio ≥ 0.9', met: (s) => (s.ratio ?? 0) >= 0.9 },
      },
      { name: 'snapshot bytes', unit: 'MB/s', values: snaps.mb, baseline: { name: copiesName, values: copies.mb }, better: 'higher' },
      againstUploads('snapshot first copies, against uploads alone', snaps.items),
      againstUploads('snapshot re-share media', reshares, { text: 'ratio ≥ 3', met: (s) => (s.ratio ?? 0) >= 3 }),
      againstUploads('snapshot re-share media, sources asked (304)', revalidated),
    ];
    // Last: it resets the worker's peak, so the whole run's so far is kept first.
    ctx.shared.workerPeakMb = Math.max(ctx.shared.workerPeakMb ?? 0, ...peakRssMb(bench.worker.child.pid));
    const big = 8;
    log(`snapshot of ${big} × 25 MB (worker peak RSS)`);
    const { peakMb, mbPerSec } = await bigSnapshotPeakRss(bench, big, 0);
    ctx.shared.workerPeakMb = Math.max(ctx.shared.workerPeakMb, peakMb);
    figures.push(
      { name: `worker peak RSS, ${big} × 25 MB snapshot`, unit: 'MB', values: [peakMb], better: 'lower', target: { text: '< 250 MB', met: (s) => s.median < 250 } },
      { name: `snapshot bytes, ${big} × 25 MB`, unit: 'MB/s', values: [mbPerSec], better: 'higher' },
    );
    return {
      figures,
      cpu: [
        { run: 'snapshot', perOp: 'media item', shares: snaps.cpu },
        { run: copiesName, perOp: 'media item', shares: copies.cpu },
        { run: uploadsName, perOp: 'media item', shares: uploads.cpu },
      ],
    };
  },
};
