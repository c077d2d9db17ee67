import { UnrecoverableError, type Job } from 'bullmq';
import { prepared, type Knex } from '../../db/knex.js';
import type { SessionMediaRow, SnapshotMediaRow, SnapshotRow } from '../../db/types.js';
import { coerceError } from '../../logger.js';
import type { JobPayload } from '../queues/contracts.js';
import { safeDownload, type Downloaded } from '../lib/safe-fetch.js';
import { Semaphore } from '../lib/semaphore.js';
import { mediaAreCurrent, syncSessionMedia } from '../media/sync.js';
import { classify, fetchOptions, isImage, isLastAttempt, isMedia, PermanentError, type ProcessorDeps } from './deps.js';

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

/** Locks the snapshot row; undefined once it has been removed (unshared or its session deleted). */
async function lockSnapshot(trx: Knex.Transaction, id: number): Promise<SnapshotRow | undefined> {
  return trx<SnapshotRow>('community_snapshots').where({ id }).forUpdate().first();
}

/**
 * Fixes the snapshot's media list on its first run: the session's media at that moment (synced
 * first when they do not match its subreddits yet). Later runs reuse the list, so a rerun resumes.
 */
async function ensureMediaList(deps: ProcessorDeps, snapshot: SnapshotRow): Promise<boolean> {
  const has = await deps.knex('community_snapshot_media').where({ snapshot_id: snapshot.id }).first('id');
  if (has) return true;
  const session = await deps.knex('sessions').where({ id: snapshot.session_id }).first();
  if (session && !mediaAreCurrent(session)) await syncSessionMedia(deps, session.id, false);
  const media = await deps.knex<SessionMediaRow>('session_media').where({ session_id: snapshot.session_id }).orderBy('order');
  return deps.knex.transaction(async (trx) => {
    const locked = await lockSnapshot(trx, snapshot.id);
    if (!locked) return false;
    const again = await trx('community_snapshot_media').where({ snapshot_id: snapshot.id }).first('id');
    if (again) return true;
    if (media.length > 0) {
      await trx('community_snapshot_media').insert(
        media.map((m) => ({
          snapshot_id: snapshot.id,
          source_media_id: m.id,
          source_url: m.media_url,
          type: m.type,
          caption: m.caption,
          reddit_post_id: m.reddit_post_id,
          reddit_post_url: m.reddit_post_url,
          subreddit: m.subreddit,
          order: m.order,
        })),
      );
    }
    await trx('community_snapshots').where({ id: snapshot.id }).update({ media_count: media.length, updated_at: trx.fn.now() });
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

/**
 * snapshots:create. Copies every media item (and the thumbnail) into the community container with
 * bounded parallelism, recording blob name, URL, type, size and sha256; `pending → copying → ready`,
 * or `failed` naming the item once retries are exhausted. Items already copied are skipped, so a
 * rerun resumes. If the snapshot is removed meanwhile, it deletes what it wrote and ends.
 */
export async function createSnapshot(
  deps: ProcessorDeps,
  job: Pick<Job<JobPayload<'snapshots', 'create'>>, 'data' | 'attemptsMade' | 'opts'>,
): Promise<SnapshotResult> {
  const { snapshotId } = job.data;
  const container = deps.blobs.containers.snapshots;
  const purge = async (): Promise<SnapshotResult> => ({
    status: 'removed',
    purged: await deps.blobs.deletePrefix(container, snapshotPrefix(snapshotId)),
  });

  const snapshot = await deps.knex<SnapshotRow>('community_snapshots').where({ id: snapshotId }).first();
  if (!snapshot) return purge();
  if (snapshot.status === 'ready') return { status: 'already-ready' };
  await deps.knex('community_snapshots')
    .where({ id: snapshotId })
    .whereNot({ status: 'ready' })
    .update({ status: 'copying', attempts: deps.knex.raw('attempts + 1'), updated_at: deps.knex.fn.now() });

  try {
    if (!(await ensureMediaList(deps, snapshot))) return purge();
    const items = await deps.knex<SnapshotMediaRow>('community_snapshot_media').where({ snapshot_id: snapshotId }).orderBy('order');
    const pending = items.filter((i) => i.copied_at === null);
    let bytes = 0;
    const failures: { item: SnapshotMediaRow; error: Error }[] = [];
    // Two stages, each `parallelism` wide: downloads run ahead of uploads, so the storage always has
    // the next body ready (a download holds its permit until its upload starts, which bounds memory
    // to twice the parallelism).
    const parallelism = deps.config.jobs.snapshotCopyParallelism;
    const downloads = new Semaphore(parallelism);
    const uploads = new Semaphore(parallelism);
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
            ({ url } = await deps.blobs.upload(container, blobName, download.body, download.contentType));
          } finally {
            releaseUpload();
          }
          // One statement records the copy and counts it, once even when two runs copy the same item
          // (the blob name is the same, and so is the blob).
          const { rows } = await deps.knex.raw<{ rows: { recorded: number }[] }>(
            `WITH item AS (
               UPDATE community_snapshot_media
                  SET blob_name = ?, blob_url = ?, content_type = ?, bytes = ?, checksum = ?, copied_at = now()
                WHERE id = ? AND copied_at IS NULL
            RETURNING bytes)
             UPDATE community_snapshots
                SET copied_count = copied_count + (SELECT count(*) FROM item),
                    bytes_copied = bytes_copied + coalesce((SELECT sum(bytes) FROM item), 0)
              WHERE id = ?
          RETURNING (SELECT count(*) FROM item)::int AS recorded`,
            [blobName, url, download.contentType, download.bytes, download.sha256, item.id, snapshotId],
          ).options(prepared('snapshot-item-copied'));
          if (rows[0]?.recorded) bytes += download.bytes;
        } catch (e) {
          failures.push({ item, error: coerceError(e) });
        } finally {
          releaseDownload();
        }
      }),
    );
    // Stopping: what was copied is recorded; the rest is for the worker that picks the job up again.
    deps.signal?.throwIfAborted();
    if (failures.length > 0) {
      failures.sort((a, b) => a.item.order - b.item.order);
      const first = failures[0]!;
      const message =
        `${failures.length} of ${items.length} media failed to copy; first: item ${first.item.order} (${first.item.source_url}): ${first.error.message}`;
      // Retry only when some failure can get better by waiting.
      const anyRetryable = failures.some((f) => !(classify(f.error) instanceof UnrecoverableError));
      throw anyRetryable ? new Error(message) : new PermanentError(message);
    }

    let thumbnail: { blobName: string; url: string } | null = null;
    if (snapshot.source_thumbnail && !snapshot.thumbnail_url) {
      const source = await fetchThumbnail(deps, snapshot.source_thumbnail);
      if (source) {
        const blobName = `${snapshotPrefix(snapshotId)}thumbnail.${extensionOf(source.contentType)}`;
        thumbnail = { blobName, url: (await deps.blobs.upload(container, blobName, source.body, source.contentType)).url };
      }
    }

    const finished = await deps.knex.transaction(async (trx) => {
      const locked = await lockSnapshot(trx, snapshotId);
      if (!locked) return false;
      const firstImage = await trx<SnapshotMediaRow>('community_snapshot_media')
        .where({ snapshot_id: snapshotId, type: 'image' })
        .orderBy('order')
        .first('blob_url', 'blob_name');
      await trx('community_snapshots')
        .where({ id: snapshotId })
        .update({
          status: 'ready',
          ready_at: trx.fn.now(),
          updated_at: trx.fn.now(),
          last_error: null,
          ...(thumbnail
            ? { thumbnail_blob_name: thumbnail.blobName, thumbnail_url: thumbnail.url }
            : locked.thumbnail_url
              ? {}
              : { thumbnail_blob_name: firstImage?.blob_name ?? null, thumbnail_url: firstImage?.blob_url ?? null }),
        });
      return true;
    });
    if (!finished) return purge();
    return { status: 'ready', copied: pending.length, skipped: items.length - pending.length, bytes };
  } catch (e) {
    // Interrupted by a shutdown: not a failure of the snapshot; the job goes back to its queue.
    if (deps.signal?.aborted) throw e;
    const error = classify(e);
    const last = isLastAttempt(job as Job, error);
    await deps.knex('community_snapshots')
      .where({ id: snapshotId })
      .update({ last_error: error.message.slice(0, 2000), updated_at: deps.knex.fn.now(), ...(last ? { status: 'failed' } : {}) });
    throw error;
  }
}

/** snapshots:purge — every blob under the snapshot's prefix; idempotent. */
export async function purgeSnapshot(
  deps: ProcessorDeps,
  job: Pick<Job<JobPayload<'snapshots', 'purge'>>, 'data'>,
): Promise<{ deleted: number }> {
  return { deleted: await deps.blobs.deletePrefix(deps.blobs.containers.snapshots, snapshotPrefix(job.data.snapshotId)) };
}

/** Ends a snapshot as `failed` with the reason, unless it got to `ready` (or was removed) meanwhile. */
export async function markSnapshotFailed(deps: Pick<ProcessorDeps, 'knex'>, snapshotId: number, reason: string): Promise<void> {
  await deps.knex('community_snapshots')
    .where({ id: snapshotId })
    .whereNot({ status: 'ready' })
    .update({ status: 'failed', last_error: reason.slice(0, 2000), updated_at: deps.knex.fn.now() });
}
