import { outboxJobId } from '../../../workers/index.js';
import { settleDatabase, until, type Bench } from '../harness.js';
import { thumbnails } from '../jobs.js';
import type { BenchPart } from '../part.js';
import { rawOneThumbnailLatency } from '../raw-jobs.js';
import { median, quantile, type Figure } from '../stats.js';

/** One session's way from its PATCH's answer to a readable thumbnail, in ms from the answer. */
interface Trace {
  /** The thumbnail job became active; it finished; the thumbnail was read through the API. */
  active: number;
  finished: number;
  readable: number;
}

async function api(bench: Bench, method: string, path: string, body?: object): Promise<Record<string, unknown>> {
  const res = await fetch(`${bench.webUrl}${path}`, {
    method,
    headers: { cookie: bench.user.cookie, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

/** Sessions with automatic thumbnails and none yet: a change of subreddits makes a media sync and a thumbnail. */
async function autoSessions(bench: Bench, count: number): Promise<number[]> {
  const category = await bench.knex('categories').where({ is_default: true }).first('id');
  const { rows } = await bench.knex.raw<{ rows: { id: number }[] }>(
    `INSERT INTO sessions (user_id, title, subreddits, category_id, caption_theme, media_subreddits, thumbnail_source)
     SELECT ?, 'Latency ' || g, ARRAY['pics'], ?, 'joi', ARRAY['pics'], 'auto' FROM generate_series(1, ?) AS g RETURNING id`,
    [bench.user.id, category!.id, count],
  );
  return rows.map((r) => r.id);
}

/**
 * PATCHes of `subreddits` at `perSec` (open loop: each at its own time, whatever the others do), and
 * for each the time from its answer to its thumbnail being readable through GET /api/sessions/:id.
 * One poller asks PostgreSQL every 10 ms which pending sessions have a thumbnail (one statement for
 * all, so watching costs the web nothing); each one found is then read through the API, and that
 * answer is the moment it became readable.
 */
async function underLoad(bench: Bench, perSec: number, seconds: number): Promise<Trace[]> {
  const count = Math.max(1, Math.round(perSec * seconds));
  const ids = await autoSessions(bench, count);
  const answered = new Map<number, number>();
  const readable = new Map<number, number>();
  const reads: Promise<void>[] = [];
  const started = performance.now();
  const patches = ids.map(async (id, i) => {
    const at = started + (i * 1000) / perSec;
    await new Promise((r) => setTimeout(r, Math.max(0, at - performance.now())));
    await api(bench, 'PATCH', `/api/sessions/${id}`, { subreddits: 'bench' });
    answered.set(id, performance.now());
  });
  const deadline = Date.now() + seconds * 1000 + 300_000;
  const poller = (async () => {
    while (readable.size < count) {
      if (Date.now() > deadline) throw new Error(`thumbnail latency: ${count - readable.size} of ${count} thumbnails never appeared`);
      const pending = ids.filter((id) => answered.has(id) && !readable.has(id));
      const done = pending.length === 0 ? [] : ((await bench.knex('sessions').whereIn('id', pending).whereNotNull('thumbnail').pluck('id')) as number[]);
      for (const id of done) {
        readable.set(id, NaN);
        const read = api(bench, 'GET', `/api/sessions/${id}`).then((s) => {
          if (!(s.session as { thumbnail: string | null }).thumbnail) throw new Error(`session ${id}: the database has its thumbnail, the API not`);
          readable.set(id, performance.now());
        });
        read.catch(() => undefined); // awaited below, after the poller
        reads.push(read);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  await Promise.all([...patches, poller]);
  await Promise.all(reads);

  // Where the time went: the thumbnail job's own BullMQ timestamps (this host's clock, in epoch ms).
  const rows = (await bench.knex('job_outbox').where({ queue: 'thumbnails', job_name: 'generate' }).whereRaw(`(payload->>'sessionId')::int = ANY(?)`, [ids]).select('id', 'payload')) as {
    id: number;
    payload: { sessionId: number };
  }[];
  const epochAtStart = Date.now() - performance.now();
  const traces: Trace[] = [];
  for (const row of rows) {
    const job = await bench.producer.queues.thumbnails.getJob(outboxJobId(row.id));
    const answer = answered.get(row.payload.sessionId)!;
    const seen = readable.get(row.payload.sessionId)!;
    if (!job?.processedOn || !job.finishedOn) continue;
    traces.push({ active: job.processedOn - epochAtStart - answer, finished: job.finishedOn - epochAtStart - answer, readable: seen - answer });
  }
  return traces;
}

/** Waits until no media or thumbnail job is waiting or active (the syncs the PATCHes queued). */
async function drain(bench: Bench): Promise<void> {
  const queues = [bench.producer.queues.media, bench.producer.queues.thumbnails];
  await until('the media and thumbnail queues to drain', async () => {
    const counts = await Promise.all(queues.map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'prioritized')));
    return counts.every((c) => c.waiting! + c.active! + c.delayed! + c.prioritized! === 0);
  }, 300_000, 100);
}

/**
 * "How long until my thumbnail appears": at a steady half of the measured thumbnail capacity,
 * p50/p99 from a subreddits PATCH's answer to its thumbnail readable through the API, beside the raw
 * pipeline's own p50/p99 for one thumbnail, and the medians of where the time went.
 */
export const thumbnailLatencyPart: BenchPart = {
  name: 'thumblatency',
  measures:
    "PATCH subreddits changes at a steady 50 % of the measured thumbnail capacity: p50/p99 from the PATCH's answer to the thumbnail readable through GET /api/sessions/:id, and the medians of its queue wait and job run",
  baseline: "the raw pipeline of one thumbnail, one at a time: the listing fetched and parsed, the preview downloaded, rendered with the job's settings, uploaded",
  async run(ctx) {
    const { bench, quick, log } = ctx;
    // Three repetitions at most: each is a steady load of its own, and p99 comes from its hundreds of samples.
    const reps = Math.min(ctx.reps, 3);
    const capacity = ctx.shared.thumbnailsPerSec ?? (await thumbnails(bench, quick ? 24 : 60)).perSec;
    const perSec = capacity / 2;
    const seconds = quick ? 10 : 20;
    const ours = { p50: [] as number[], p99: [] as number[], wait: [] as number[], run: [] as number[], read: [] as number[] };
    const raw = { p50: [] as number[], p99: [] as number[] };
    await rawOneThumbnailLatency(bench, 3);
    for (let r = 0; r < reps; r++) {
      await settleDatabase(bench, log);
      log(`thumbnail latency repetition ${r + 1}/${reps}: ${perSec.toFixed(1)} PATCH/s (half of ${capacity.toFixed(1)} thumbnails/s) for ${seconds} s`);
      const traces = await underLoad(bench, perSec, seconds);
      await drain(bench);
      const total = traces.map((t) => t.readable);
      ours.p50.push(quantile(total, 0.5)), ours.p99.push(quantile(total, 0.99));
      ours.wait.push(median(traces.map((t) => t.active)));
      ours.run.push(median(traces.map((t) => t.finished - t.active)));
      ours.read.push(median(traces.map((t) => t.readable - t.finished)));
      const one = await rawOneThumbnailLatency(bench, quick ? 10 : 30);
      raw.p50.push(one.p50), raw.p99.push(one.p99);
    }
    const baseline = (values: number[]) => ({ name: 'raw pipeline, one thumbnail', values });
    const figures: Figure[] = [
      { name: 'thumbnail appears p50, at 50 % capacity', unit: 'ms', values: ours.p50, baseline: baseline(raw.p50), better: 'lower' },
      { name: 'thumbnail appears p99, at 50 % capacity', unit: 'ms', values: ours.p99, baseline: baseline(raw.p99), better: 'lower' },
      { name: 'thumbnail appears: PATCH answer → job active (median)', unit: 'ms', values: ours.wait, better: 'lower' },
      { name: 'thumbnail appears: job active → finished (median)', unit: 'ms', values: ours.run, better: 'lower' },
      { name: 'thumbnail appears: job finished → read through the API (median)', unit: 'ms', values: ours.read, better: 'lower' },
    ];
    return { figures };
  },
};
