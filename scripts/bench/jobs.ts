import { Queue, Worker } from 'bullmq';
import { writeOutboxJobs } from '../../db/outbox.js';
import { outboxJobId, regenerateThumbnails } from '../../workers/index.js';
import { listingToMedia, listingUrl, type MediaItem } from '../../workers/media/reddit.js';
import { jobs, queueKeyPrefix, type QueueName } from '../../workers/queues/contracts.js';
import { createRedis } from '../../workers/queues/connection.js';
import { OutboxDispatcher } from '../../workers/outbox/dispatcher.js';
import { pino } from 'pino';
import { quantile, type CpuRow, type Figure } from './stats.js';
import { cpuMeter, peakRssMb, resetPeakRss, until, type Bench, type CpuShare } from './harness.js';

/**
 * `count` sessions of the bench user in the default category, each with the columns `row(i)` gives
 * (title, subreddits and the rest): the one seeder the jobs' parts build their sessions with.
 */
async function insertSessions(bench: Bench, count: number, row: (i: number) => Record<string, unknown>): Promise<number[]> {
  const category = await bench.knex('categories').where({ is_default: true }).first('id');
  const rows: { id: number }[] = await bench.knex('sessions')
    .insert(Array.from({ length: count }, (_, i) => ({ user_id: bench.user.id, category_id: category!.id, caption_theme: 'joi', ...row(i) })))
    .returning('id');
  return rows.map((r) => r.id);
}

/** Manual-mode sessions whose only media is the given item (or none): jobs then touch nothing else. */
async function manualSessions(bench: Bench, count: number, media: ((i: number) => MediaItem) | null): Promise<number[]> {
  const ids = await insertSessions(bench, count, (i) => ({ title: `Jobs ${i}`, subreddits: ['pics'], is_manual_mode: true }));
  if (media) {
    await bench.knex('session_media').insert(
      ids.map((id, i) => {
        const m = media(i);
        return { session_id: id, media_url: m.mediaUrl, thumbnail: m.thumbnail, type: m.type, previews: m.previews, order: 0 };
      }),
    );
  }
  return ids;
}

export interface LatencySample {
  p50: number;
  p99: number;
}

/** Job start, measured from two points of the PATCH that enqueued the job. */
export interface JobStartSample {
  /**
   * COMMIT → active, the span issue 14 names: from the job's BullMQ `timestamp`, stamped when the
   * web process's after-COMMIT fast path adds it (the `add` right after COMMIT resolves, in the
   * same tick; the raw baseline's span starts just before its own `add`).
   */
  commit: LatencySample;
  /**
   * Transaction start → active: from the outbox row's `created_at` (`now()`, the PATCH
   * transaction's start), so the transaction's own statements, COMMIT and its WAL flush count too.
   */
  transaction: LatencySample;
}

/**
 * PATCH → job active, with idle workers, one PATCH at a time. Every clock is this host's: the end
 * is BullMQ's `processedOn`, stamped by the worker when the job became active.
 */
export async function jobStart(bench: Bench, samples: number): Promise<JobStartSample> {
  const sessions = await manualSessions(bench, samples, null);
  const queue = bench.producer.queues.thumbnails;
  const fromCommit: number[] = [];
  const fromTransaction: number[] = [];
  for (const id of sessions) {
    const res = await fetch(`${bench.webUrl}/api/sessions/${id}`, {
      method: 'PATCH',
      headers: { cookie: bench.user.cookie, 'content-type': 'application/json' },
      body: JSON.stringify({ thumbnail: '' }),
    });
    if (res.status !== 200) throw new Error(`job-start PATCH answered ${res.status}: ${await res.text()}`);
    const row = await bench.knex('job_outbox').where({ queue: 'thumbnails' }).whereRaw(`(payload->>'sessionId')::int = ?`, [id]).orderBy('id', 'desc').first('id', 'created_at');
    const job = await until('the job to become active', async () => {
      const j = await queue.getJob(outboxJobId(row.id));
      return j?.processedOn ? j : undefined;
    });
    fromCommit.push(job.processedOn! - job.timestamp);
    fromTransaction.push(job.processedOn! - (row.created_at as Date).getTime());
    await until('the job to finish', async () => {
      const state = await queue.getJobState(outboxJobId(row.id));
      if (state === 'failed') throw new Error(`job-start thumbnail job failed: ${(await queue.getJob(outboxJobId(row.id)))?.failedReason}`);
      return state === 'completed';
    });
  }
  const sample = (latencies: number[]): LatencySample => ({ p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) });
  return { commit: sample(fromCommit), transaction: sample(fromTransaction) };
}

/** The raw limit: BullMQ `add` → active on the same Redis, an idle no-op worker in this process. */
export async function rawJobStart(bench: Bench, samples: number): Promise<LatencySample> {
  const name = `rawstart`;
  const prefix = queueKeyPrefix(bench.config.queuePrefix, name);
  const queue = new Queue(name, { connection: createRedis(bench.config.redisUrl, 'producer', 'bench-raw-q', { commandTimeoutMs: bench.config.bounds.redisCommandMs }), prefix });
  const activated = new Map<string, number>();
  const worker = new Worker(name, async (job) => void activated.set(job.id!, Date.now()), {
    connection: createRedis(bench.config.redisUrl, 'worker', 'bench-raw-w', { commandTimeoutMs: bench.config.bounds.redisCommandMs }),
    prefix,
  });
  await worker.waitUntilReady();
  const latencies: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const started = Date.now();
      const job = await queue.add('noop', { i });
      await until('the raw job to run', async () => activated.has(job.id!));
      const fresh = await queue.getJob(job.id!);
      latencies.push((fresh?.processedOn ?? activated.get(job.id!)!) - started);
    }
  } finally {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
  return { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) };
}

export interface Rate {
  perSec: number;
  /** CPU ms per job (or per media item) of each process. */
  cpu: CpuShare;
}

/**
 * A jobs/s figure next to its matched raw pipeline's, with the target ratio, and both runs' rows of
 * the CPU table (`perOp`: what one raw operation is).
 */
export function rateAgainstRaw(o: { name: string; ours: Rate[]; rawName: string; raw: Rate[]; target: number; perOp: string }): { figures: Figure[]; cpu: CpuRow[] } {
  return {
    figures: [
      {
        name: o.name,
        unit: 'jobs/s',
        values: o.ours.map((t) => t.perSec),
        baseline: { name: o.rawName, values: o.raw.map((t) => t.perSec) },
        better: 'higher',
        target: { text: `ratio ≥ ${o.target}`, met: (s) => (s.ratio ?? 0) >= o.target },
      },
    ],
    cpu: [
      { run: o.name, perOp: 'job', shares: o.ours.map((t) => t.cpu) },
      { run: o.rawName, perOp: o.perOp, shares: o.raw.map((t) => t.cpu) },
    ],
  };
}

/**
 * Thumbnail jobs/s from 1920×1080 JPEGs on loopback, all queued at once, at the worker's concurrency.
 * Each session's media item is what a sync keeps of the media host's listing (its renditions
 * included), so the job picks its source as it would from Reddit's.
 */
export async function thumbnails(bench: Bench, count: number): Promise<Rate> {
  const base = bench.media.baseUrl;
  const res = await fetch(listingUrl(base, ['bench'], count));
  const items = listingToMedia(await res.json(), base, count);
  const sessions = await manualSessions(bench, count, (i) => items[i]!);
  const regens = await regenerateThumbnails(bench.knex, sessions);
  const rate = await runOutboxJobs(bench, 'thumbnails', regens.map((r) => r.outboxId));
  const missing = await bench.knex('sessions').whereIn('id', sessions).whereNull('thumbnail').count<{ count: number }[]>({ count: '*' });
  if (Number(missing[0]!.count) > 0) throw new Error(`${missing[0]!.count} thumbnail job(s) completed without writing a thumbnail`);
  return rate;
}

/**
 * Dispatches the outbox rows `ids` (jobs of `queue`) at once and waits for the worker to finish
 * them all: their jobs per second, and the CPU each process spent per job.
 */
async function runOutboxJobs(bench: Bench, queueName: QueueName, ids: number[]): Promise<Rate> {
  const dispatcher = new OutboxDispatcher(bench.knex, bench.producer, pino({ level: 'silent' }), { maxBackoffMs: 1000 });
  const queue = bench.producer.queues[queueName];
  // The completed set is capped (removeOnComplete keeps 5,000): emptied first, so that its count
  // still grows by one per job after the earlier parts' thousands.
  await queue.clean(0, 0, 'completed');
  const before = (await queue.getJobCounts('completed')).completed!;
  const started = Date.now();
  const meter = cpuMeter(bench);
  await dispatcher.dispatchIds(ids);
  // Watched in Redis, which costs the box less than asking Postgres 50 times a second.
  await until(
    `every ${queueName} job`,
    async () => {
      const counts = await queue.getJobCounts('completed', 'failed');
      if (counts.failed! > 0) throw new Error(`${counts.failed} ${queueName} job(s) failed: ${(await queue.getFailed(0, 0))[0]?.failedReason}`);
      return counts.completed! - before >= ids.length;
    },
    300_000,
    20,
  );
  const seconds = (Date.now() - started) / 1000;
  return { perSec: ids.length / seconds, cpu: meter.stop(ids.length) };
}

/**
 * Sessions whose subreddits (`bench`) differ from those their media came from, with a custom
 * thumbnail (a sync makes no other job): each is a media sync's whole work.
 */
export async function unsyncedSessions(bench: Bench, count: number): Promise<number[]> {
  return insertSessions(bench, count, (i) => ({
    title: `Sync ${i}`,
    subreddits: ['bench'],
    thumbnail: 'https://cdn.example.test/t.png',
    thumbnail_source: 'custom',
  }));
}

/** Media sync jobs/s: `count` sessions' syncs queued at once, each a listing of 100 posts with their renditions. */
export async function mediaSyncs(bench: Bench, count: number): Promise<Rate> {
  const sessions = await unsyncedSessions(bench, count);
  const written = await bench.knex.transaction((trx) => writeOutboxJobs(trx, sessions.map((id) => jobs.syncMedia(id))));
  const rate = await runOutboxJobs(bench, 'media', written.map((w) => w.id));
  const synced = await bench.knex('sessions').whereIn('id', sessions).whereRaw(`media_subreddits = subreddits`).count<{ count: number }[]>({ count: '*' });
  if (Number(synced[0]!.count) !== count) throw new Error(`${count - Number(synced[0]!.count)} media sync(s) completed without writing their media`);
  return rate;
}

export interface Throughput {
  itemsPerSec: number;
  mbPerSec: number;
  /** CPU ms per media item of each process. */
  cpu: CpuShare;
}

/**
 * A snapshot of `count` media of ~500 KB (`big`: 25 MB): share → ready, through the API and a
 * worker. The same `rep` names the same media, so a second run re-shares stored bytes.
 */
export async function snapshot(bench: Bench, count: number, rep: number, kind: 'blob' | 'big' = 'blob'): Promise<Throughput> {
  const [sessionId] = await manualSessions(bench, 1, null);
  await bench.knex('session_media').insert(
    Array.from({ length: count }, (_, i) => ({ session_id: sessionId, media_url: `${bench.media.baseUrl}/${kind}/${rep * 1000 + i}.jpg`, type: 'image', order: i })),
  );
  // The host's files exist before the clock starts, as a CDN's do and as the raw baseline's buffers
  // do: making 500 KB of random bytes costs ~2 ms of CPU, which is not the copy's.
  if (kind === 'blob') for (let i = 0; i < count; i++) bench.media.blob(rep * 1000 + i);
  const started = Date.now();
  const meter = cpuMeter(bench);
  const res = await fetch(`${bench.webUrl}/api/sessions/${sessionId}`, {
    method: 'PATCH',
    headers: { cookie: bench.user.cookie, 'content-type': 'application/json' },
    body: JSON.stringify({ shareToCommunity: true }),
  });
  if (res.status !== 200) throw new Error(`share PATCH answered ${res.status}: ${await res.text()}`);
  const snap = await until(
    'the snapshot to be ready',
    async () => {
      const s = await bench.knex('community_snapshots').where({ session_id: sessionId }).first('status', 'last_error', 'bytes_copied');
      if (s?.status === 'failed') throw new Error(`snapshot failed: ${s.last_error}`);
      return s?.status === 'ready' ? s : undefined;
    },
    300_000,
    20,
  );
  const seconds = (Date.now() - started) / 1000;
  const cpu = meter.stop(count);
  if (process.env.BENCH_DEBUG) {
    const row = await bench.knex('job_outbox').where({ queue: 'snapshots' }).orderBy('id', 'desc').first('id', 'created_at');
    const job = await bench.producer.queues.snapshots.getJob(outboxJobId(row.id));
    process.stderr.write(`snapshot: total ${seconds}s, queued→active ${job!.processedOn! - (row.created_at as Date).getTime()}ms, active→done ${job!.finishedOn! - job!.processedOn!}ms\n`);
  }
  return { itemsPerSec: count / seconds, mbPerSec: Number(snap.bytes_copied) / 1e6 / seconds, cpu };
}

/**
 * Makes every source a copy remembered stale, as if the max-age the media host gave had run out:
 * the next copy asks each one again (If-None-Match) instead of reusing what it stored without asking.
 */
export async function expireMediaSources(bench: Bench): Promise<void> {
  await bench.knex('media_sources').update({ fresh_until: bench.knex.raw('now()') });
}

/**
 * The worker's peak RSS (MB) while it copies one snapshot of `count` 25 MB media, all in flight at
 * once (downloads ahead of uploads: twice `SNAPSHOT_COPY_PARALLELISM`); the peak is reset first.
 */
export async function bigSnapshotPeakRss(bench: Bench, count: number, rep: number): Promise<{ peakMb: number; mbPerSec: number }> {
  resetPeakRss(bench.worker.child.pid);
  const { mbPerSec } = await snapshot(bench, count, rep, 'big');
  return { peakMb: peakRssMb(bench.worker.child.pid)[0]!, mbPerSec };
}
