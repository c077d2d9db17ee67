import type { Job } from 'bullmq';
import sharp from 'sharp';
import { prepared } from '../../db/knex.js';
import type { SessionRow } from '../../db/types.js';
import { coerceError } from '../../logger.js';
import type { JobPayload } from '../queues/contracts.js';
import { safeDownload } from '../lib/safe-fetch.js';
import { mediaAreCurrent, syncSessionMedia } from '../media/sync.js';
import { fetchOptions, isImage, PermanentError, type ProcessorDeps } from './deps.js';

export const THUMBNAIL_SIZE = { width: 640, height: 360 };

export type ThumbnailResult =
  | { status: 'generated'; url: string; blobName: string }
  | { status: 'skipped'; reason: 'missing' | 'stale' | 'custom' | 'no-media' };

/** Deterministic, so a rerun of the same generation overwrites instead of adding a blob. */
export function thumbnailBlobName(sessionId: number, generation: number): string {
  return `thumbnails/sessions/${sessionId}/${generation}.webp`;
}

/** Resizes to a 640×360 cover WebP; refuses inputs over the pixel limit and corrupt images. */
export async function renderThumbnail(input: Buffer, maxPixels: number): Promise<Buffer> {
  try {
    return await sharp(input, { limitInputPixels: maxPixels, failOn: 'error' })
      .rotate()
      .resize(THUMBNAIL_SIZE.width, THUMBNAIL_SIZE.height, { fit: 'cover', position: 'attention' })
      .webp({ quality: 80 })
      .toBuffer();
  } catch (e) {
    throw new PermanentError(`image cannot be made into a thumbnail: ${(e as Error).message}`);
  }
}

/** The session's first image (a gif or video's still when there is no image), read with the session. */
const SOURCE_URL = `coalesce(
  (SELECT m.media_url FROM session_media m WHERE m.session_id = s.id AND m.type = 'image' ORDER BY m."order" LIMIT 1),
  (SELECT m.thumbnail FROM session_media m WHERE m.session_id = s.id AND m.thumbnail <> '' ORDER BY m."order" LIMIT 1)
) AS source_url`;

/**
 * thumbnails:generate. Writes the result only while the job's generation is still the session's and
 * the user has not chosen a custom thumbnail since; otherwise it removes what it uploaded.
 */
export async function generateThumbnail(
  deps: ProcessorDeps,
  job: Pick<Job<JobPayload<'thumbnails', 'generate'>>, 'data'>,
): Promise<ThumbnailResult> {
  const { sessionId, generation } = job.data;
  const load = (): Promise<(SessionRow & { source_url: string | null }) | undefined> =>
    deps.knex('sessions as s').where('s.id', sessionId).first('s.*', deps.knex.raw(SOURCE_URL)).options(prepared('thumbnail-session'));
  const staleness = (s: SessionRow | undefined): ThumbnailResult | null => {
    if (!s) return { status: 'skipped', reason: 'missing' };
    if (s.thumbnail_source === 'custom') return { status: 'skipped', reason: 'custom' };
    if (s.thumbnail_generation !== generation) return { status: 'skipped', reason: 'stale' };
    return null;
  };

  let session = await load();
  const skip = staleness(session);
  if (skip || !session) return skip ?? { status: 'skipped', reason: 'missing' };
  if (!mediaAreCurrent(session)) {
    await syncSessionMedia(deps, sessionId, false);
    session = await load();
    const after = staleness(session);
    if (after || !session) return after ?? { status: 'skipped', reason: 'missing' };
  }
  const source = session.source_url;
  if (!source) return { status: 'skipped', reason: 'no-media' };

  const download = await safeDownload(source, fetchOptions(deps, isImage));
  const webp = await renderThumbnail(download.body, deps.config.mediaMaxPixels);
  const container = deps.blobs.containers.thumbnails;
  const blobName = thumbnailBlobName(sessionId, generation);
  const { url } = await deps.blobs.upload(container, blobName, webp, 'image/webp');

  // Written only while this generation is current; returns the blob of the generation it replaces.
  const { rows } = await deps.knex.raw<{ rows: { previous: string | null }[] }>(
    `UPDATE sessions s SET thumbnail = ?, thumbnail_blob = ?
       FROM (SELECT id, thumbnail_blob FROM sessions WHERE id = ? FOR UPDATE) old
      WHERE s.id = old.id AND s.thumbnail_generation = ? AND s.thumbnail_source = 'auto'
  RETURNING old.thumbnail_blob AS previous`,
    [url, blobName, sessionId, generation],
  ).options(prepared('thumbnail-write'));
  if (rows.length === 0) {
    await deps.blobs.deleteBlob(container, blobName);
    return { status: 'skipped', reason: 'stale' };
  }
  // The older generation is no longer referenced by anything. The thumbnail is written either way:
  // a retry would not bring this name back, so a failed delete is logged, not the job's failure
  // (the session's purge on DELETE still removes the blob).
  const previous = rows[0]!.previous;
  if (previous && previous !== blobName) {
    await deps.blobs.deleteBlob(container, previous).catch((e: unknown) =>
      deps.logger.warn({ err: coerceError(e), sessionId, blob: previous }, 'could not delete the replaced thumbnail'),
    );
  }
  return { status: 'generated', url, blobName };
}

/** thumbnails:purge — every thumbnail blob of a deleted session. */
export async function purgeThumbnails(
  deps: ProcessorDeps,
  job: Pick<Job<JobPayload<'thumbnails', 'purge'>>, 'data'>,
): Promise<{ deleted: number }> {
  const deleted = await deps.blobs.deletePrefix(deps.blobs.containers.thumbnails, `thumbnails/sessions/${job.data.sessionId}/`);
  return { deleted };
}
