import type { Knex } from './knex.js';
import type { DurableBlobRow } from './types.js';

/**
 * Whether anything references the durable blob `d` (DESIGN §3): a snapshot's item or thumbnail, a
 * saved session's media or thumbnail. Each reference column has an index on the hash.
 */
const REFERENCED = `(
     EXISTS (SELECT 1 FROM community_snapshot_media r WHERE r.blob_sha256 = d.sha256)
  OR EXISTS (SELECT 1 FROM session_media r WHERE r.blob_sha256 = d.sha256)
  OR EXISTS (SELECT 1 FROM community_snapshots r WHERE r.thumbnail_sha256 = d.sha256)
  OR EXISTS (SELECT 1 FROM sessions r WHERE r.thumbnail_sha256 = d.sha256))`;

/**
 * The blob recorded under `sha256`, if any, with its collector mark cleared: a copy about to reuse it
 * keeps it from being collected for at least the grace period while the copy is recorded.
 */
export async function claimDurableBlob(knex: Knex, sha256: string): Promise<DurableBlobRow | undefined> {
  const rows = await knex<DurableBlobRow>('durable_blobs').where({ sha256 }).update({ unreferenced_since: null }).returning('*');
  return rows[0] as DurableBlobRow | undefined;
}

/**
 * Records a stored blob. Two copies racing on the same bytes both uploaded the same name, so the
 * second insert is a no-op (its mark is cleared, as for a claim).
 */
export async function insertDurableBlob(knex: Knex, blob: Pick<DurableBlobRow, 'sha256' | 'blob_name' | 'content_type' | 'bytes'>): Promise<void> {
  await knex('durable_blobs').insert(blob).onConflict('sha256').merge({ unreferenced_since: null });
}

/**
 * Locks the durable blobs `FOR SHARE` in the caller's transaction and returns the hashes that exist.
 * Anything that adds a reference calls this first, in the transaction that writes the reference:
 * the collector then cannot delete those rows (it locks `FOR UPDATE SKIP LOCKED` and re-checks for
 * references), so a reference never points at a deleted blob. A hash missing from the result was
 * collected already: the caller must not reference it (store the bytes again, or fail).
 */
export async function holdDurableBlobs(trx: Knex.Transaction, hashes: readonly string[]): Promise<Set<string>> {
  const unique = [...new Set(hashes)];
  if (unique.length === 0) return new Set();
  const rows = (await trx('durable_blobs').whereIn('sha256', unique).orderBy('sha256').forShare().select('sha256')) as { sha256: string }[];
  return new Set(rows.map((r) => r.sha256));
}

/** Marks up to `limit` blobs nothing references (`unreferenced_since = now()`); returns how many. */
export async function markUnreferencedBlobs(knex: Knex, limit: number): Promise<number> {
  const { rowCount } = await knex.raw(
    `UPDATE durable_blobs SET unreferenced_since = now()
      WHERE sha256 IN (SELECT d.sha256 FROM durable_blobs d WHERE d.unreferenced_since IS NULL AND NOT ${REFERENCED} LIMIT ?)`,
    [limit],
  );
  return rowCount ?? 0;
}

/** Clears the mark of up to `limit` marked blobs that are referenced again; returns how many. */
export async function clearReferencedMarks(knex: Knex, limit: number): Promise<number> {
  const { rowCount } = await knex.raw(
    `UPDATE durable_blobs SET unreferenced_since = NULL
      WHERE sha256 IN (SELECT d.sha256 FROM durable_blobs d WHERE d.unreferenced_since IS NOT NULL AND ${REFERENCED} LIMIT ?)`,
    [limit],
  );
  return rowCount ?? 0;
}

/**
 * Deletes the rows of up to `limit` blobs unreferenced for longer than `graceMs`, in one short
 * transaction, and returns them; the caller deletes their blobs after COMMIT (a failed blob delete
 * then leaves an orphan blob, never a reference to a missing one). Rows some transaction holds (a
 * reference being added) are skipped, and each is checked again for references under its lock.
 */
export async function deleteCollectableBlobs(knex: Knex, graceMs: number, limit: number): Promise<Pick<DurableBlobRow, 'sha256' | 'blob_name'>[]> {
  return knex.transaction(async (trx) => {
    const locked = (await trx('durable_blobs as d')
      .where('d.unreferenced_since', '<', trx.raw(`now() - make_interval(secs => ?)`, [graceMs / 1000]))
      .orderBy('d.unreferenced_since')
      .limit(limit)
      .forUpdate()
      .skipLocked()
      .select('d.sha256')) as { sha256: string }[];
    if (locked.length === 0) return [];
    // A new statement sees references committed since the lock was taken.
    const { rows } = await trx.raw<{ rows: Pick<DurableBlobRow, 'sha256' | 'blob_name'>[] }>(
      `DELETE FROM durable_blobs d WHERE d.sha256 = ANY(?) AND NOT ${REFERENCED} RETURNING d.sha256, d.blob_name`,
      [locked.map((r) => r.sha256)],
    );
    return rows;
  });
}
