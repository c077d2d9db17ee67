import { clearReferencedMarks, deleteCollectableBlobs, markUnreferencedBlobs } from '../../db/durable-blobs.js';
import { coerceError } from '../../logger.js';
import type { ProcessorDeps } from './deps.js';

/**
 * The `durable-blobs` maintenance task, one batch (docs/architecture.md §5): marks up to `limit` blobs nothing
 * references, clears the mark of those referenced again, then deletes up to `limit` blobs
 * unreferenced for longer than `MEDIA_GC_GRACE_MINUTES`: rows first (in their own short
 * transaction, each checked again under its lock), blobs after COMMIT, each unless a copy wrote it
 * again after it was marked (that copy records it anew). Returns how many rows it deleted.
 */
export async function collectDurableBlobs(deps: ProcessorDeps, limit: number): Promise<number> {
  await markUnreferencedBlobs(deps.knex, limit);
  await clearReferencedMarks(deps.knex, limit);
  const graceMs = deps.config.maintenance.mediaGcGraceMinutes * 60_000;
  const deleted = await deleteCollectableBlobs(deps.knex, graceMs, limit);
  const container = deps.blobs.containers.snapshots;
  for (const blob of deleted) {
    try {
      const outcome = await deps.blobs.deleteBlob(container, blob.blob_name, { unlessWrittenSince: blob.unreferenced_since });
      if (outcome === 'written-since') deps.logger.info({ sha256: blob.sha256, blob: blob.blob_name }, 'durable blob written again while collected; kept for the copy that wrote it');
    } catch (e) {
      // The row is gone, so nothing can reference the blob again: an orphan blob, never a dangling reference.
      deps.logger.error({ err: coerceError(e), sha256: blob.sha256, blob: blob.blob_name }, 'durable blob row deleted but its blob was not; it is left orphaned');
    }
  }
  return deleted.length;
}
