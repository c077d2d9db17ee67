import type { Bench } from '../harness.js';
import type { BenchPart } from '../part.js';
import { quantile } from '../stats.js';

/** What a save moves, as storage and the durable_blobs table count it. */
interface StorageTotals {
  blobs: number;
  bytes: number;
  rows: number;
  rowBytes: number;
}

async function storageTotals(bench: Bench): Promise<StorageTotals> {
  const listed = await bench.blobs.list(bench.config.blobContainers.snapshots, 'media/sha256/');
  const row = (await bench.knex('durable_blobs').first(bench.knex.raw('count(*)::int AS rows'), bench.knex.raw('coalesce(sum(bytes), 0)::bigint AS bytes'))) as { rows: number; bytes: string };
  return { blobs: listed.length, bytes: listed.reduce((n, b) => n + b.size, 0), rows: row.rows, rowBytes: Number(row.bytes) };
}

async function api(bench: Bench, method: string, path: string, body?: object): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${bench.webUrl}${path}`, {
    method,
    headers: { cookie: bench.user.cookie, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** A manual session of `count` media from the media host (ids from `first`), shared; resolves once its snapshot is ready. */
async function sharedSession(bench: Bench, count: number, first: number): Promise<{ snapshotId: number; seconds: number }> {
  const category = await bench.knex('categories').where({ is_default: true }).first('id');
  const [session] = (await bench.knex('sessions')
    .insert({ user_id: bench.user.id, title: `Save bench ${first}`, subreddits: ['pics'], category_id: category!.id, caption_theme: 'joi', is_manual_mode: true })
    .returning('id')) as { id: number }[];
  await bench.knex('session_media').insert(
    Array.from({ length: count }, (_, i) => ({ session_id: session!.id, media_url: `${bench.media.baseUrl}/blob/${first + i}.jpg`, type: 'image', order: i })),
  );
  const started = Date.now();
  const shared = await api(bench, 'PATCH', `/api/sessions/${session!.id}`, { shareToCommunity: true });
  if (shared.status !== 200) throw new Error(`share PATCH answered ${shared.status}: ${JSON.stringify(shared.json)}`);
  const deadline = Date.now() + 600_000;
  for (;;) {
    const s = await bench.knex('community_snapshots').where({ session_id: session!.id }).first('id', 'status', 'last_error');
    if (s?.status === 'failed') throw new Error(`snapshot failed: ${s.last_error}`);
    if (s?.status === 'ready') return { snapshotId: s.id as number, seconds: (Date.now() - started) / 1000 };
    if (Date.now() > deadline) throw new Error('benchmark timed out waiting for the snapshot to be ready');
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface SaveFigures {
  saveP50: number;
  saveP99: number;
  /** Bytes (and blobs) storage and durable_blobs gained across all the saves: zero when nothing moves. */
  bytesMoved: number;
  blobsAdded: number;
  /** PATCH share → ready, for a session whose `count` media are all stored already. */
  shareStoredSeconds: number;
}

/**
 * Save to library of an item of `count` media, `saves` times (each copy deleted before the next save,
 * so every save is a real copy, not a reuse), and the share of a second session of the same media.
 */
export async function saveToLibrary(bench: Bench, count: number, saves: number): Promise<SaveFigures> {
  const first = 200_000;
  const { snapshotId } = await sharedSession(bench, count, first);
  const stored = await sharedSession(bench, count, first);

  const before = await storageTotals(bench);
  const times: number[] = [];
  for (let i = 0; i < saves; i++) {
    const started = performance.now();
    const saved = await api(bench, 'POST', `/api/community/sessions/${snapshotId}/save`);
    times.push(performance.now() - started);
    if (saved.status !== 200 || saved.json.reused !== false) throw new Error(`save answered ${saved.status}: ${JSON.stringify(saved.json)}`);
    const media = (await bench.knex('session_media').where({ session_id: saved.json.sessionId as number }).count<{ n: number }[]>({ n: '*' }))[0]!.n;
    if (Number(media) !== count) throw new Error(`saved copy has ${media} media, not ${count}`);
    const removed = await api(bench, 'DELETE', `/api/sessions/${saved.json.sessionId as number}`);
    if (removed.status !== 204) throw new Error(`delete of the copy answered ${removed.status}`);
  }
  const after = await storageTotals(bench);
  return {
    saveP50: quantile(times, 0.5),
    saveP99: quantile(times, 0.99),
    bytesMoved: after.bytes - before.bytes + (after.rowBytes - before.rowBytes),
    blobsAdded: after.blobs - before.blobs + (after.rows - before.rows),
    shareStoredSeconds: stored.seconds,
  };
}

/** Save to library of an item of 200 media, and the share of 200 media already stored. */
export const savePart: BenchPart = {
  name: 'save',
  measures:
    'save to library of an item of 200 media: p50/p99, and bytes and blobs added (storage and durable_blobs before and after); the share of a session of 200 media already stored (PATCH → ready)',
  baseline: '-',
  async run({ bench, quick, log }) {
    const saves = quick ? 20 : 100;
    const runs: SaveFigures[] = [];
    for (let r = 0; r < (quick ? 1 : 3); r++) {
      log(`save to library repetition ${r + 1} (${saves} saves of 200 media)`);
      runs.push(await saveToLibrary(bench, 200, saves));
    }
    const zero = { text: '= 0', met: (s: { median: number }) => s.median === 0 };
    return {
      figures: [
        { name: 'save 200 media p50', unit: 'ms', values: runs.map((f) => f.saveP50), better: 'lower' },
        { name: 'save 200 media p99', unit: 'ms', values: runs.map((f) => f.saveP99), better: 'lower' },
        { name: 'save bytes moved', unit: 'bytes', values: runs.map((f) => f.bytesMoved), better: 'lower', target: zero },
        { name: 'save blobs added', unit: 'blobs', values: runs.map((f) => f.blobsAdded), better: 'lower', target: zero },
        { name: 'share 200 stored media', unit: 's', values: runs.map((f) => f.shareStoredSeconds), better: 'lower' },
      ],
    };
  },
};
