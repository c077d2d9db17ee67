import type { Job } from 'bullmq';
import sharp from 'sharp';
import { findSessionWithThumbnailSource, writeGeneratedThumbnail } from '../../db/sessions.js';
import type { SessionRow } from '../../db/types.js';
import { coerceError } from '../../logger.js';
import type { JobPayload } from '../queues/contracts.js';
import { safeDownload } from '../lib/safe-fetch.js';
import { pickThumbnailSource } from '../media/thumbnail-source.js';
import { thumbnailBlobName } from '../storage/thumbnail-urls.js';
import { mediaAreCurrent, syncSessionMedia } from './media.js';
import { fetchOptions, isImage, PermanentError, type ProcessorDeps } from './deps.js';

export const THUMBNAIL_SIZE = { width: 640, height: 360 };

/**
 * The thumbnail's encoding. libwebp's effort (its `method`) 2 instead of sharp's default 4: on
 * photographs (the media here) it encodes a 640×360 thumbnail in about half the CPU time, and its
 * files come out 3–4 % larger at the same quality (measured on three photos: 20–28 ms → 41–50 ms
 * at effort 4, 23.8/37.0/60.5 KB → 22.9/35.6/58.8 KB). Encoding is most of a job's CPU once the
 * source is a right-sized preview; above effort 2 the encoder searches much harder for little gain.
 */
export const THUMBNAIL_WEBP = { quality: 80, effort: 2 } as const;

export type ThumbnailResult =
  | { status: 'generated'; url: string; blobName: string }
  | { status: 'skipped'; reason: 'missing' | 'stale' | 'custom' | 'no-media' };

/** Resizes to a 640×360 cover WebP; refuses inputs over the pixel limit and corrupt images. */
export async function renderThumbnail(input: Buffer, maxPixels: number): Promise<Buffer> {
  try {
    return await sharp(input, { limitInputPixels: maxPixels, failOn: 'error' })
      .rotate()
      .resize(THUMBNAIL_SIZE.width, THUMBNAIL_SIZE.height, { fit: 'cover', position: 'attention' })
      .webp(THUMBNAIL_WEBP)
      .toBuffer();
  } catch (e) {
    throw new PermanentError(`image cannot be made into a thumbnail: ${(e as Error).message}`);
  }
}

/**
 * thumbnails:generate. Writes the result only while the job's generation is still the session's and
 * the user has not chosen a custom thumbnail since; otherwise it removes what it uploaded.
 */
export async function generateThumbnail(
  deps: ProcessorDeps,
  job: Pick<Job<JobPayload<'thumbnails', 'generate'>>, 'data'>,
): Promise<ThumbnailResult> {
  const { sessionId, generation } = job.data;
  const load = () => findSessionWithThumbnailSource(deps.knex, sessionId);
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
  if (!session.source_url) return { status: 'skipped', reason: 'no-media' };
  const previews = session.source_previews;
  const source = pickThumbnailSource({ url: session.source_url, ...previews?.source }, previews?.resolutions ?? [], THUMBNAIL_SIZE);

  // The same checks whichever size was picked: safe-fetch's limits and allowlist, then sharp's pixel limit.
  const download = await safeDownload(source.url, fetchOptions(deps, isImage));
  const webp = await renderThumbnail(download.body, deps.config.mediaMaxPixels);
  const container = deps.blobs.containers.thumbnails;
  const blobName = thumbnailBlobName(sessionId, generation);
  const { url } = await deps.blobs.upload(container, blobName, webp, 'image/webp');

  // The guarded write is the job's last database write: it records the completion with it.
  const written = await writeGeneratedThumbnail(deps.knex, { sessionId, generation, url, blobName, completedOutboxId: deps.completion?.outboxId ?? null });
  if (written && deps.completion) deps.completion.recorded = true;
  if (!written) {
    await deps.blobs.deleteBlob(container, blobName);
    return { status: 'skipped', reason: 'stale' };
  }
  // The older generation is no longer referenced by anything. The thumbnail is written either way:
  // a retry would not bring this name back, so a failed delete is logged, not the job's failure
  // (the session's purge on DELETE still removes the blob).
  const previous = written.previous;
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
