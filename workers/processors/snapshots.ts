import { UnrecoverableError, type Job } from 'bullmq';
import { findSession, listSessionMedia } from '../../db/sessions.js';
import {
  findSnapshot,
  insertSnapshotMediaList,
  listSnapshotItems,
  lockSnapshot,
  markSnapshotCopying,
  markSnapshotReady,
  recordSnapshotError,
  recordSnapshotItemCopied,
  snapshotHasMediaList,
} from '../../db/snapshots.js';
import type { SnapshotMediaRow, SnapshotRow } from '../../db/types.js';
import { coerceError } from '../../logger.js';
import type { JobPayload } from '../queues/contracts.js';
import { safeDownload, type Downloaded } from '../lib/safe-fetch.js';
import { Semaphore } from '../lib/semaphore.js';
import { mediaAreCurrent, syncSessionMedia } from './media.js';
import { classify, fetchOptions, isImage, isMedia, PermanentError, recordCompleted, type ProcessorDeps } from './deps.js';

export type SnapshotResult =
  | { status: 'ready'; copied: number; skipped: number; bytes: number }
  | { status: 'removed'; purged: number }
  | { status: 'already-ready' };

export const snapshotPrefix = (snapshotId: number): string => `snapshots/${snapshotId}/`;

const EXTENSIONS: Record<string, string> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/gif': 'gif',
  'image/webp': 'webp',
  'video/mp4': 'mp4',
  'video/webm': 'webm',
};

function extensionOf(contentType: string): string {
  return EXTENSIONS[contentType.split(';')[0]!.trim().toLowerCase()] ?? 'bin';
}

/** `snapshots/<snapshotId>/<order>-<mediaId>.<ext>`: a rerun overwrites the same names. */
export function snapshotBlobName(snapshotId: number, item: Pick<SnapshotMediaRow, 'order' | 'id' | 'source_media_id'>, contentType: string): string {
  return `${snapshotPrefix(snapshotId)}${item.order}-${item.source_media_id ?? item.id}.${extensionOf(contentType)}`;
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
      return { url, body, bytes: body.length, contentType: 'image/webp', sha256: '' };
    }
    return await safeDownload(url, fetchOptions(deps, isImage));
  } catch {
    // A thumbnail is a nicety: a snapshot without one falls back to its first image.
    return null;
  }
}

/** Copies the snapshot's source thumbnail into its prefix; null when it has none (or it cannot be had). */
async function copyThumbnail(deps: ProcessorDeps, snapshot: SnapshotRow): Promise<{ blobName: string; url: string } | null> {
  if (!snapshot.source_thumbnail || snapshot.thumbnail_url) return null;
  const source = await fetchThumbnail(deps, snapshot.source_thumbnail);
  if (!source) return null;
  const blobName = `${snapshotPrefix(snapshot.id)}thumbnail.${extensionOf(source.contentType)}`;
  return { blobName, url: (await deps.blobs.upload(deps.blobs.containers.snapshots, blobName, source.body, source.contentType)).url };
}

interface ItemFailure {
  item: SnapshotMediaRow;
  error: Error;
}

/**
 * Copies the items not copied yet, each recorded as soon as it is stored. Two stages, each
 * `parallelism` wide: downloads run ahead of uploads, so the storage always has the next body ready
 * (a download holds its permit until its upload starts, which bounds memory to twice the
 * parallelism). Returns the bytes this run recorded and the items that failed.
 */
async function copyItems(deps: ProcessorDeps, snapshotId: number, pending: SnapshotMediaRow[]): Promise<{ bytes: number; failures: ItemFailure[] }> {
  const parallelism = deps.config.jobs.snapshotCopyParallelism;
  const downloads = new Semaphore(parallelism);
  const uploads = new Semaphore(parallelism);
  let bytes = 0;
  const failures: ItemFailure[] = [];
  await Promise.all(
    pending.map(async (item) => {
      let releaseDownload = await downloads.acquire();
      try {
        if (deps.signal?.aborted) return;
        const download = await safeDownload(item.source_url, fetchOptions(deps, isMedia));
        const blobName = snapshotBlobName(snapshotId, item, download.contentType);
        const releaseUpload = await uploads.acquire();
        releaseDownload();
        releaseDownload = () => undefined;
        let url: string;
        try {
          ({ url } = await deps.blobs.upload(deps.blobs.containers.snapshots, blobName, download.body, download.contentType));
        } finally {
          releaseUpload();
        }
        const copy = { blobName, url, contentType: download.contentType, bytes: download.bytes, sha256: download.sha256 };
        if (await recordSnapshotItemCopied(deps.knex, snapshotId, item.id, copy)) bytes += download.bytes;
      } catch (e) {
        failures.push({ item, error: coerceError(e) });
      } finally {
        releaseDownload();
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

/** Marks the snapshot ready unless it was removed meanwhile; false when it was. */
async function finishSnapshot(deps: ProcessorDeps, snapshotId: number, thumbnail: { blobName: string; url: string } | null): Promise<boolean> {
  return deps.knex.transaction(async (trx) => {
    const locked = await lockSnapshot(trx, snapshotId);
    if (!locked) return false;
    await markSnapshotReady(trx, locked, thumbnail);
    // The job's last database write: the completion record commits with it.
    await recordCompleted(deps, trx);
    return true;
  });
}

/**
 * snapshots:create. Copies every media item (and the thumbnail) into the community container with
 * bounded parallelism, recording blob name, URL, type, size and sha256; `pending → copying → ready`,
 * or `failed` naming the item once retries are exhausted. Items already copied are skipped, so a
 * rerun resumes. If the snapshot is removed meanwhile, it deletes what it wrote and ends.
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

/** snapshots:purge — every blob under the snapshot's prefix; idempotent. */
export async function purgeSnapshot(deps: ProcessorDeps, job: Pick<Job<JobPayload<'snapshots', 'purge'>>, 'data'>): Promise<{ deleted: number }> {
  return { deleted: await deps.blobs.deletePrefix(deps.blobs.containers.snapshots, snapshotPrefix(job.data.snapshotId)) };
}

/** Ends a snapshot as `failed` with the reason, unless it got to `ready` (or was removed) meanwhile. */
export async function markSnapshotFailed(deps: Pick<ProcessorDeps, 'knex'>, snapshotId: number, reason: string): Promise<void> {
  await recordSnapshotError(deps.knex, snapshotId, reason, true);
}
