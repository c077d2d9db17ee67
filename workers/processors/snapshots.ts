import { createHash } from 'node:crypto';
import { UnrecoverableError, type Job } from 'bullmq';
import { claimDurableBlobs, referenceDurableBlobs } from '../../db/durable-blobs.js';
import { findMediaSources, type MediaSource } from '../../db/media-sources.js';
import { findSession, listSessionMedia } from '../../db/sessions.js';
import {
  findSnapshot,
  insertSnapshotMediaList,
  listSnapshotItems,
  lockSnapshot,
  markSnapshotCopying,
  markSnapshotReady,
  recordSnapshotError,
  recordSnapshotCopies,
  snapshotHasMediaList,
} from '../../db/snapshots.js';
import type { Knex } from '../../db/knex.js';
import type { DurableBlobRow, SnapshotMediaRow, SnapshotRow } from '../../db/types.js';
import { coerceError } from '../../logger.js';
import type { JobPayload } from '../queues/contracts.js';
import { Batcher } from '../lib/batcher.js';
import { safeDownload, safeDownloadTo, safeRevalidateTo, type Downloaded, type StreamedDownload } from '../lib/safe-fetch.js';
import { Semaphore } from '../lib/semaphore.js';
import { SpillSink, withSpoolFile, type SpoolFile } from '../lib/spool-file.js';
import { reusedBlob, storeDurable, type ClaimBlobs, type DurableContent, type StoredBlob, type UploadGate } from '../storage/durable-media.js';
import { mediaAreCurrent, syncSessionMedia } from './media.js';
import { classify, fetchOptions, isImage, isMedia, PermanentError, recordCompleted, type ProcessorDeps } from './deps.js';

export type SnapshotResult =
  | { status: 'ready'; copied: number; skipped: number; bytes: number }
  | { status: 'removed'; purged: number }
  | { status: 'already-ready' };

/**
 * Where snapshots made before content addressing keep their own copies (`snapshots/<id>/…`). New
 * copies are durable blobs (`media/sha256/…`); `npm run media:migrate` moves the old ones.
 */
export const snapshotPrefix = (snapshotId: number): string => `snapshots/${snapshotId}/`;

/** A durable blob was collected between storing and referencing it (a whole grace period unreferenced): store it again. */
class BlobCollectedError extends Error {}

/**
 * Stores the content durably and runs `record` in a transaction holding its blob; stores again when
 * the blob was collected in between (at most twice: a second collection means something is wrong).
 */
async function storeAndReference<T>(
  deps: ProcessorDeps,
  content: DurableContent,
  record: (trx: Knex.Transaction, stored: StoredBlob) => Promise<T>,
): Promise<{ stored: StoredBlob; result: T }> {
  for (let attempt = 1; ; attempt++) {
    const stored = await storeDurable(deps, content);
    try {
      const result = await deps.knex.transaction(async (trx) => {
        if (!(await referenceDurableBlobs(trx, [stored])).has(stored.sha256)) throw new BlobCollectedError(`durable blob ${stored.sha256} was collected before it was referenced`);
        return record(trx, stored);
      });
      return { stored, result };
    } catch (e) {
      if (!(e instanceof BlobCollectedError) || attempt >= 2) throw e;
    }
  }
}

/**
 * Fixes the snapshot's media list on its first run: the session's media at that moment (synced
 * first when they do not match its subreddits yet). Later runs reuse the list, so a rerun resumes.
 * False when the snapshot was removed meanwhile.
 */
async function ensureMediaList(deps: ProcessorDeps, snapshot: SnapshotRow): Promise<boolean> {
  if (await snapshotHasMediaList(deps.knex, snapshot.id)) return true;
  const session = await findSession(deps.knex, snapshot.session_id);
  if (session && !mediaAreCurrent(session)) await syncSessionMedia(deps, session.id, false);
  const media = await listSessionMedia(deps.knex, snapshot.session_id);
  return deps.knex.transaction(async (trx) => {
    if (!(await lockSnapshot(trx, snapshot.id))) return false;
    if (!(await snapshotHasMediaList(trx, snapshot.id))) await insertSnapshotMediaList(trx, snapshot.id, media);
    return true;
  });
}

/** The source thumbnail's bytes: read straight from our own container when it is one of ours. */
async function fetchThumbnail(deps: ProcessorDeps, url: string): Promise<Downloaded | null> {
  const container = deps.blobs.containers.thumbnails;
  const ownPrefix = deps.blobs.url(container, '');
  try {
    if (url.startsWith(ownPrefix)) {
      const name = decodeURIComponent(url.slice(ownPrefix.length).split('?')[0]!);
      const body = await deps.blobs.download(container, name);
      return { url, body, bytes: body.length, contentType: 'image/webp', sha256: createHash('sha256').update(body).digest('hex'), etag: null, freshForSeconds: 0 };
    }
    return await safeDownload(url, fetchOptions(deps, isImage));
  } catch {
    // A thumbnail is a nicety: a snapshot without one falls back to its first image.
    return null;
  }
}

/**
 * Stores the snapshot's source thumbnail as a durable blob (nothing uploaded when it is stored
 * already); null when it has none (or it cannot be had). The reference is written by {@link finishSnapshot}.
 */
async function copyThumbnail(deps: ProcessorDeps, snapshot: SnapshotRow): Promise<Downloaded | null> {
  if (!snapshot.source_thumbnail || snapshot.thumbnail_url) return null;
  return fetchThumbnail(deps, snapshot.source_thumbnail);
}

/**
 * Bodies up to this size stay in memory; larger ones spill to a spool file. Small media (most of
 * them) then cost no disk round trip, and a copy holds at most 2 × parallelism × this in memory.
 */
const SPILL_OVER_BYTES = 1024 * 1024;

/**
 * The longest a source's word that its bytes stay current is taken for (its max-age, capped): past
 * it the source is asked again (a 304 still moves no byte), so a wrong promise is not kept forever.
 */
const MAX_FRESH_SECONDS = 7 * 24 * 3600;

/**
 * An item's bytes as fetched: the ones a copy stored before, still current (`revalidated` says for
 * how long when the source was asked now; null when it was not asked), or a body read now.
 */
type Fetched =
  | { kind: 'unchanged'; source: MediaSource; revalidated: { freshForSeconds: number } | null }
  | { kind: 'body'; download: StreamedDownload; content: DurableContent };

/**
 * Fetches an item, as an HTTP cache would. A source a copy fetched before (`known`) is not asked at
 * all while the freshness it gave lasts (Cache-Control max-age); after that it is asked whether it
 * still has those bytes (If-None-Match with their strong ETag), and a 304 costs no body. Otherwise
 * the body streams through a sha256 into memory or, past `SPILL_OVER_BYTES`, the spool file.
 */
async function fetchItem(deps: ProcessorDeps, item: SnapshotMediaRow, known: MediaSource | undefined, spool: SpoolFile): Promise<Fetched> {
  if (known?.fresh) return { kind: 'unchanged', source: known, revalidated: null };
  let sink: SpillSink | undefined;
  const open = (): SpillSink => (sink = new SpillSink(spool, SPILL_OVER_BYTES));
  const options = fetchOptions(deps, isMedia);
  const download = known ? await safeRevalidateTo(item.source_url, known.etag, options, open) : await safeDownloadTo(item.source_url, options, open);
  if ('notModified' in download) return { kind: 'unchanged', source: known!, revalidated: { freshForSeconds: download.freshForSeconds } };
  return { kind: 'body', download, content: { ...download, ...sink!.content() } };
}

/** An item stored and about to be recorded, with what to remember of its source for the next copy. */
interface StoredItem {
  item: SnapshotMediaRow;
  stored: StoredBlob;
  contentType: string;
  source: { etag: string; freshForSeconds: number } | null;
}

/** The bytes of a fetched item at their content address: reused as they are, or stored (uploaded through `gate` unless already stored). */
async function storeItem(deps: ProcessorDeps, item: SnapshotMediaRow, fetched: Fetched, claim: ClaimBlobs, gate: UploadGate): Promise<StoredItem> {
  if (fetched.kind === 'unchanged') {
    const { source, revalidated } = fetched;
    const stored = reusedBlob(deps.blobs, { sha256: source.sha256, blobName: source.blobName, contentType: source.contentType, bytes: source.bytes });
    const remember = revalidated && { etag: source.etag, freshForSeconds: Math.min(revalidated.freshForSeconds, MAX_FRESH_SECONDS) };
    return { item, stored, contentType: source.contentType, source: remember };
  }
  const { download, content } = fetched;
  const stored = await storeDurable(deps, content, claim, gate);
  // Only the URL itself is asked again later, so a tag the source gave after a redirect is not kept.
  const sameUrl = download.url === new URL(item.source_url).href;
  const remember = sameUrl && download.etag ? { etag: download.etag, freshForSeconds: Math.min(download.freshForSeconds, MAX_FRESH_SECONDS) } : null;
  return { item, stored, contentType: download.contentType, source: remember };
}

type RecordOutcome = 'recorded' | 'already' | 'collected';

/**
 * Records stored items in one statement ({@link recordSnapshotCopies}). An item whose reused blob
 * was collected meanwhile is not recorded (`collected`); `already` when another run recorded it first.
 */
async function recordItems(deps: ProcessorDeps, snapshotId: number, items: StoredItem[]): Promise<RecordOutcome[]> {
  const { held, recorded } = await recordSnapshotCopies(
    deps.knex,
    snapshotId,
    items.map(({ item, stored, contentType, source }) => ({
      itemId: item.id,
      sha256: stored.sha256,
      blobName: stored.blobName,
      url: stored.url,
      contentType,
      bytes: stored.bytes,
      uploaded: stored.uploaded > 0,
      blobContentType: stored.contentType,
      source: source && { url: item.source_url, ...source },
    })),
  );
  return items.map((i) => (!held.has(i.stored.sha256) ? 'collected' : recorded.has(i.item.id) ? 'recorded' : 'already'));
}

interface ItemFailure {
  item: SnapshotMediaRow;
  error: Error;
}

/** A copy's two stages, each `parallelism` wide: downloads, and uploads of what is not stored yet. */
interface CopyStages {
  downloads: Semaphore;
  uploads: Semaphore;
}

/**
 * Fetches an item ({@link fetchItem}) and stores it at its content address ({@link storeItem});
 * null when the copy is stopping. Downloads run ahead of uploads: a download holds its permit until
 * its upload may start (or until its bytes are found stored already), so the storage always has the
 * next body ready, and an upload holds its permit for the upload alone. The body is gone (its spool
 * file removed) when this returns: memory holds at most `SPILL_OVER_BYTES` for each permit held,
 * the disk at most one spool file.
 */
async function fetchAndStore(deps: ProcessorDeps, item: SnapshotMediaRow, known: MediaSource | undefined, stages: CopyStages, claim: ClaimBlobs): Promise<StoredItem | null> {
  let releaseDownload = await stages.downloads.acquire();
  try {
    if (deps.signal?.aborted) return null;
    return await withSpoolFile(async (spool) => {
      const fetched = await fetchItem(deps, item, known, spool);
      return storeItem(deps, item, fetched, claim, async (upload) => {
        const releaseUpload = await stages.uploads.acquire();
        releaseDownload();
        releaseDownload = () => undefined;
        try {
          return await upload();
        } finally {
          releaseUpload();
        }
      });
    });
  } finally {
    releaseDownload();
  }
}

/**
 * Copies the items not copied yet: each fetched and stored ({@link fetchAndStore}), then recorded.
 * The database work of concurrent items is batched ({@link Batcher}): one statement claims the
 * hashes that arrived together, one transaction records the items stored together, so a copy of
 * many small media costs a few round trips per batch rather than six per item. An item is recorded
 * soon after it is stored, so a rerun resumes where this run stopped; it is recorded holding no
 * permit and no body, so neither stage waits for the database. Memory holds at most
 * `SPILL_OVER_BYTES` per item in a stage, whatever the items' sizes; the disk holds at most twice
 * the parallelism of spool files, each at most `MEDIA_MAX_BYTES`. Returns the bytes this run
 * recorded and the items that failed.
 */
async function copyItems(deps: ProcessorDeps, snapshotId: number, pending: SnapshotMediaRow[]): Promise<{ bytes: number; failures: ItemFailure[] }> {
  const parallelism = deps.config.jobs.snapshotCopyParallelism;
  const stages: CopyStages = { downloads: new Semaphore(parallelism), uploads: new Semaphore(parallelism) };
  const known = await findMediaSources(deps.knex, pending.map((i) => i.source_url));
  const claims = new Batcher<string, DurableBlobRow | undefined>(async (hashes) => {
    const found = await claimDurableBlobs(deps.knex, hashes);
    return hashes.map((h) => found.get(h));
  });
  const records = new Batcher<StoredItem, RecordOutcome>((items) => recordItems(deps, snapshotId, items));
  const claim: ClaimBlobs = (sha256) => claims.request(sha256);
  let bytes = 0;
  const failures: ItemFailure[] = [];
  await Promise.all(
    pending.map(async (item) => {
      try {
        for (let attempt = 1; ; attempt++) {
          // A second attempt downloads the bytes again: its first stored them, and they are gone from here.
          const stored = await fetchAndStore(deps, item, attempt === 1 ? known.get(item.source_url) : undefined, stages, claim);
          if (!stored) return;
          const outcome = await records.request(stored);
          if (outcome === 'recorded') bytes += stored.stored.bytes;
          if (outcome !== 'collected') return;
          // Collected after it was found (a whole grace period unreferenced): store the bytes again.
          // A second collection means something is wrong.
          if (attempt >= 2) throw new Error(`durable blob ${stored.stored.sha256} was collected twice while ${item.source_url} was copied`);
        }
      } catch (e) {
        failures.push({ item, error: coerceError(e) });
      }
    }),
  );
  return { bytes, failures };
}

/** One error for the job naming the first failed item; retryable only when some failure can get better by waiting. */
function copyFailure(failures: ItemFailure[], total: number): Error {
  const first = [...failures].sort((a, b) => a.item.order - b.item.order)[0]!;
  const message = `${failures.length} of ${total} media failed to copy; first: item ${first.item.order} (${first.item.source_url}): ${first.error.message}`;
  const anyRetryable = failures.some((f) => !(classify(f.error) instanceof UnrecoverableError));
  return anyRetryable ? new Error(message) : new PermanentError(message);
}

/** Marks the snapshot ready (referencing the stored thumbnail, if any) unless it was removed meanwhile; false when it was. */
async function finishSnapshot(deps: ProcessorDeps, snapshotId: number, thumbnail: Downloaded | null): Promise<boolean> {
  const finish = async (trx: Knex.Transaction, stored: StoredBlob | null): Promise<boolean> => {
    const locked = await lockSnapshot(trx, snapshotId);
    if (!locked) return false;
    await markSnapshotReady(trx, locked, stored);
    // The job's last database write: the completion record commits with it.
    await recordCompleted(deps, trx);
    return true;
  };
  if (!thumbnail) return deps.knex.transaction((trx) => finish(trx, null));
  return (await storeAndReference(deps, thumbnail, finish)).result;
}

/**
 * snapshots:create. Copies every media item (and the thumbnail) into the community container with
 * bounded parallelism, each stored once under its sha256 (docs/architecture.md §5; bytes already stored are not
 * uploaded again), recording the reference, blob name, URL, type, size and sha256;
 * `pending → copying → ready`, or `failed` naming the item once retries are exhausted. Items already
 * copied are skipped, so a rerun resumes. If the snapshot is removed meanwhile, it ends: what it
 * stored is no longer referenced, and the collector deletes it after the grace period.
 */
export async function createSnapshot(
  deps: ProcessorDeps,
  job: Pick<Job<JobPayload<'snapshots', 'create'>>, 'data'>,
): Promise<SnapshotResult> {
  const { snapshotId } = job.data;
  const purge = async (): Promise<SnapshotResult> => ({ status: 'removed', purged: (await purgeSnapshot(deps, job)).deleted });

  const snapshot = await findSnapshot(deps.knex, snapshotId);
  if (!snapshot) return purge();
  if (snapshot.status === 'ready') return { status: 'already-ready' };
  await markSnapshotCopying(deps.knex, snapshotId);
  try {
    if (!(await ensureMediaList(deps, snapshot))) return purge();
    const items = await listSnapshotItems(deps.knex, snapshotId);
    const pending = items.filter((i) => i.copied_at === null);
    const { bytes, failures } = await copyItems(deps, snapshotId, pending);
    // Stopping: what was copied is recorded; the rest is for the worker that picks the job up again.
    deps.signal?.throwIfAborted();
    if (failures.length > 0) throw copyFailure(failures, items.length);
    if (!(await finishSnapshot(deps, snapshotId, await copyThumbnail(deps, snapshot)))) return purge();
    return { status: 'ready', copied: pending.length, skipped: items.length - pending.length, bytes };
  } catch (e) {
    // Interrupted by a shutdown: not a failure of the snapshot; the job goes back to its queue.
    if (deps.signal?.aborted) throw e;
    // The reason is shown while retries go on; the registry's final-failure hook ends it as `failed`.
    const error = classify(e);
    await recordSnapshotError(deps.knex, snapshotId, error.message, false);
    throw error;
  }
}

/**
 * snapshots:purge — the blobs of a snapshot made before content addressing (its own prefix);
 * idempotent. Durable blobs are never deleted here: the removed rows dropped their references, and
 * the `durable-blobs` maintenance task collects what nothing references any more.
 */
export async function purgeSnapshot(deps: ProcessorDeps, job: Pick<Job<JobPayload<'snapshots', 'purge'>>, 'data'>): Promise<{ deleted: number }> {
  return { deleted: await deps.blobs.deletePrefix(deps.blobs.containers.snapshots, snapshotPrefix(job.data.snapshotId)) };
}

/** Ends a snapshot as `failed` with the reason, unless it got to `ready` (or was removed) meanwhile. */
export async function markSnapshotFailed(deps: Pick<ProcessorDeps, 'knex'>, snapshotId: number, reason: string): Promise<void> {
  await recordSnapshotError(deps.knex, snapshotId, reason, true);
}
