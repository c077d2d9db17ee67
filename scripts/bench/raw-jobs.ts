import { createHash } from 'node:crypto';
import http from 'node:http';
import { BlobServiceClient } from '@azure/storage-blob';
import pg from 'pg';
import sharp from 'sharp';
import { listingToMedia, listingUrl, type MediaItem } from '../../workers/media/reddit.js';
import { pickThumbnailSource } from '../../workers/media/thumbnail-source.js';
import { renderThumbnail, THUMBNAIL_SIZE } from '../../workers/processors/thumbnails.js';
import { cpuMeter, type Bench } from './harness.js';
import type { Rate, Throughput } from './jobs.js';
import { quantile } from './stats.js';

/*
 * The job figures' matched baselines: the I/O a job does, with its inputs and settings, at its
 * parallelism, and nothing of the platform (no queue, outbox, completion record or job row reads).
 */

/** GET over a keep-alive agent (as the worker's client keeps its connections), the whole body. */
export function httpGet(agent: http.Agent, url: string): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`GET ${url} answered ${res.statusCode}`))));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** `count` loops of `step(i)`, `parallelism` at a time, timed with the CPU each process spent. */
async function parallel(bench: Bench, count: number, parallelism: number, step: (i: number) => Promise<unknown>): Promise<Rate> {
  let next = 0;
  const started = Date.now();
  const meter = cpuMeter(bench);
  await Promise.all(
    Array.from({ length: parallelism }, async () => {
      for (let i = next++; i < count; i = next++) await step(i);
    }),
  );
  return { perSec: count / ((Date.now() - started) / 1000), cpu: meter.stop(count) };
}

/** The preview a thumbnail job renders item `item` from: the same choice as the job's. */
export function thumbnailSourceUrl(item: MediaItem): string {
  return pickThumbnailSource({ url: item.mediaUrl, ...item.previews?.source }, item.previews?.resolutions ?? [], THUMBNAIL_SIZE).url;
}

/**
 * One thumbnail's I/O: the preview the job picks downloaded over keep-alive HTTP, rendered by the
 * job's own `renderThumbnail` (its sharp pipeline and WebP settings), uploaded as the job does.
 */
export function thumbnailPipeline(bench: Bench): { one(item: MediaItem, name: string): Promise<void>; close(): void } {
  // As in the worker: no libvips operation cache, which would otherwise serve this repeated input.
  sharp.cache(false);
  const agent = new http.Agent({ keepAlive: true });
  const container = BlobServiceClient.fromConnectionString(bench.config.azureStorageConnectionString).getContainerClient(bench.config.blobContainers.thumbnails);
  return {
    async one(item, name) {
      const webp = await renderThumbnail(await httpGet(agent, thumbnailSourceUrl(item)), bench.config.mediaMaxPixels);
      await container.getBlockBlobClient(name).upload(webp, webp.length, { blobHTTPHeaders: { blobContentType: 'image/webp' } });
    },
    close: () => agent.destroy(),
  };
}

/** The thumbnails figure's matched baseline: `count` thumbnails' I/O, `parallelism` at a time. */
export async function rawThumbnailPipeline(bench: Bench, count: number, parallelism: number): Promise<Rate> {
  const base = bench.media.baseUrl;
  const items = listingToMedia(await (await fetch(listingUrl(base, ['bench'], count))).json(), base, count);
  const pipeline = thumbnailPipeline(bench);
  try {
    return await parallel(bench, count, parallelism, (i) => pipeline.one(items[i]!, `raw/thumbnails/${Date.now()}-${i}.webp`));
  } finally {
    pipeline.close();
  }
}

/**
 * The media sync figure's matched baseline: for each session, the same listing fetched (keep-alive
 * HTTP) and parsed into the same items (`listingToMedia`, the job's parser), and the same rows
 * written in one transaction: the session's media replaced and its `media_subreddits` set.
 */
export async function rawMediaSync(bench: Bench, sessionIds: number[], parallelism: number): Promise<Rate> {
  const base = bench.media.baseUrl;
  const agent = new http.Agent({ keepAlive: true });
  const pool = new pg.Pool({ connectionString: bench.config.databaseUrl, max: parallelism });
  await Promise.all(Array.from({ length: parallelism }, async () => (await pool.connect()).release()));
  const columns = ['session_id', 'media_url', 'thumbnail', 'caption', 'type', 'reddit_post_id', 'reddit_post_url', 'subreddit', 'previews', '"order"'];
  try {
    return await parallel(bench, sessionIds.length, parallelism, async (i) => {
      const id = sessionIds[i]!;
      const items = listingToMedia(JSON.parse((await httpGet(agent, listingUrl(base, ['bench']))).toString('utf8')), base);
      const values = items.flatMap((m, order) => [id, m.mediaUrl, m.thumbnail, m.caption, m.type, m.redditPostId, m.redditPostUrl, m.subreddit, m.previews === null ? null : JSON.stringify(m.previews), order]);
      const rows = items.map((_, r) => `(${columns.map((_, c) => `$${r * columns.length + c + 1}`).join(', ')})`).join(', ');
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('DELETE FROM session_media WHERE session_id = $1', [id]);
        await client.query(`INSERT INTO session_media (${columns.join(', ')}) VALUES ${rows}`, values);
        await client.query('UPDATE sessions SET media_subreddits = $2 WHERE id = $1', [id, ['bench']]);
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    });
  } finally {
    agent.destroy();
    await pool.end();
  }
}

/**
 * The raw pipeline behind one new thumbnail, one at a time: the listing fetched and parsed, the
 * first item's preview downloaded, rendered and uploaded. Its p50/p99 in ms over `samples`.
 */
export async function rawOneThumbnailLatency(bench: Bench, samples: number): Promise<{ p50: number; p99: number }> {
  const base = bench.media.baseUrl;
  const agent = new http.Agent({ keepAlive: true });
  const pipeline = thumbnailPipeline(bench);
  const times: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const started = performance.now();
      const items = listingToMedia(JSON.parse((await httpGet(agent, listingUrl(base, ['bench']))).toString('utf8')), base);
      await pipeline.one(items[0]!, `raw/latency/${Date.now()}-${i}.webp`);
      times.push(performance.now() - started);
    }
  } finally {
    agent.destroy();
    pipeline.close();
  }
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99) };
}

/**
 * Uploads `count` bodies to the snapshots container with @azure/storage-blob, `parallelism` at a
 * time: each body `item(i)` gives, under the name it gives. The snapshot baselines' one loop.
 */
async function rawUploads(bench: Bench, count: number, parallelism: number, item: (i: number) => Promise<{ body: Buffer; name: string }>): Promise<Throughput> {
  const container = BlobServiceClient.fromConnectionString(bench.config.azureStorageConnectionString).getContainerClient(bench.config.blobContainers.snapshots);
  let bytes = 0;
  const rate = await parallel(bench, count, parallelism, async (i) => {
    const { body, name } = await item(i);
    await container.getBlockBlobClient(name).uploadData(body, { blobHTTPHeaders: { blobContentType: 'image/jpeg' } });
    bytes += body.length;
  });
  return { itemsPerSec: rate.perSec, mbPerSec: (bytes / 1e6) * (rate.perSec / count), cpu: rate.cpu };
}

/** Uploads of the same bytes, already in memory, to the same Azurite with @azure/storage-blob, same parallelism. */
export async function rawSnapshot(bench: Bench, count: number, parallelism: number, rep: number): Promise<Throughput> {
  const buffers = Array.from({ length: count }, (_, i) => bench.media.blob(rep * 1000 + i));
  return rawUploads(bench, count, parallelism, async (i) => ({ body: buffers[i]!, name: `raw/${rep}/${i}.jpg` }));
}

/**
 * The snapshot figure's matched baseline: each item downloaded from the media host (keep-alive, as
 * the worker's client), hashed with sha256 and uploaded under its hash, `parallelism` at a time.
 */
export async function rawCopy(bench: Bench, count: number, parallelism: number, rep: number): Promise<Throughput> {
  const agent = new http.Agent({ keepAlive: true });
  for (let i = 0; i < count; i++) bench.media.blob(rep * 1000 + i);
  try {
    return await rawUploads(bench, count, parallelism, async (i) => {
      const body = await httpGet(agent, `${bench.media.baseUrl}/blob/${rep * 1000 + i}.jpg`);
      return { body, name: `raw-copy/${createHash('sha256').update(body).digest('hex')}.jpg` };
    });
  } finally {
    agent.destroy();
  }
}
