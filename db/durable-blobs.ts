import { preparedQuery, type Knex } from './knex.js';
import type { DurableBlobRow } from './types.js';

/**
 * Whether anything references the durable blob `d` (docs/architecture.md §5): a snapshot's item or thumbnail, a
 * saved session's media or thumbnail. Each reference column has an index on the hash.
 */
const REFERENCED = `(
     EXISTS (SELECT 1 FROM community_snapshot_media r WHERE r.blob_sha256 = d.sha256)
  OR EXISTS (SELECT 1 FROM session_media r WHERE r.blob_sha256 = d.sha256)
  OR EXISTS (SELECT 1 FROM community_snapshots r WHERE r.thumbnail_sha256 = d.sha256)
  OR EXISTS (SELECT 1 FROM sessions r WHERE r.thumbnail_sha256 = d.sha256))`;

/**
 * The blobs recorded under `hashes` (those that are), with their collector marks cleared: a copy
 * about to reuse one keeps it from being collected for at least the grace period while the copy is
 * recorded. One statement for many hashes: concurrent copies share it.
 */
export async function claimDurableBlobs(knex: Knex, hashes: readonly string[]): Promise<Map<string, DurableBlobRow>> {
  const rows = await preparedQuery<DurableBlobRow>(
    knex,
    'claim-durable-blobs',
    'UPDATE durable_blobs SET unreferenced_since = NULL WHERE sha256 = ANY($1::text[]) RETURNING *',
    [[...new Set(hashes)]],
  );
  return new Map(rows.map((r) => [r.sha256, r]));
}

/**
 * Records uploaded blobs' rows from `rows` (a SELECT of sha256, blob_name, content_type, bytes in
 * hash order); a row another copy of the same bytes recorded first is kept as it is. The conflict
 * has no target on purpose: `blob_name` is unique too (it is made from the hash), and with
 * `ON CONFLICT (sha256)` two copies inserting the same new bytes at once could meet on that index
 * instead, which is an error rather than a conflict: the job's attempt failed.
 */
export const recordDurableBlobsSql = (rows: string): string =>
  `INSERT INTO durable_blobs (sha256, blob_name, content_type, bytes) ${rows} ON CONFLICT DO NOTHING`;

/** A stored blob about to be referenced: uploaded by this copy (`uploaded` > 0) or reused. */
export interface StoredBlobRecord {
  sha256: string;
  blobName: string;
  contentType: string;
  bytes: number;
  uploaded: number;
}

/**
 * Holds the stored blobs in the caller's transaction, which then writes references to them, and
 * returns the hashes held. The blobs this copy uploaded are recorded first (a row another copy of
 * the same bytes recorded meanwhile is kept as it is); then all are held by {@link holdDurableBlobs}.
 * A reused blob is missing from the result when it was collected since it was claimed: the caller
 * must not reference it (store the bytes again, or fail). Both statements take their rows in hash
 * order, so two copies of overlapping media cannot deadlock.
 */
export async function referenceDurableBlobs(trx: Knex.Transaction, stored: readonly StoredBlobRecord[]): Promise<Set<string>> {
  const uploaded = [...new Map(stored.filter((s) => s.uploaded > 0).map((s) => [s.sha256, s])).values()];
  if (uploaded.length > 0) {
    await preparedQuery(
      trx,
      'record-durable-blobs',
      recordDurableBlobsSql('SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) ORDER BY 1'),
      [uploaded.map((u) => u.sha256), uploaded.map((u) => u.blobName), uploaded.map((u) => u.contentType), uploaded.map((u) => u.bytes)],
    );
  }
  return holdDurableBlobs(trx, stored.map((s) => s.sha256));
}

/**
 * The statement of {@link holdDurableBlobs}, for the hashes of `hashes` (an SQL array): also a
 * step of a larger statement that holds what it references. Rows are locked in hash order, so two
 * copies of overlapping media cannot deadlock.
 */
export const holdDurableBlobsSql = (hashes: string): string => `SELECT sha256 FROM durable_blobs WHERE sha256 = ANY(${hashes}) ORDER BY sha256 FOR SHARE`;

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
  const rows = await preparedQuery<{ sha256: string }>(trx, 'hold-durable-blobs', holdDurableBlobsSql('$1::text[]'), [unique]);
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

/** A collected blob's row, as it was: its blob is to be deleted unless it was written again since `unreferenced_since`. */
export type CollectedBlob = Pick<DurableBlobRow, 'sha256' | 'blob_name'> & { unreferenced_since: Date };

/**
 * Deletes the rows of up to `limit` blobs unreferenced for longer than `graceMs`, in one short
 * transaction, and returns them; the caller deletes their blobs after COMMIT, each only if it was
 * not written since it was marked: a copy that found the row gone meanwhile uploads the bytes again
 * and records a new row, and that blob must stay (a failed blob delete leaves an orphan blob, never
 * a reference to a missing one). Rows some transaction holds (a
 * reference being added) are skipped, and each is checked again for references under its lock.
 */
export async function deleteCollectableBlobs(knex: Knex, graceMs: number, limit: number): Promise<CollectedBlob[]> {
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
    const { rows } = await trx.raw<{ rows: CollectedBlob[] }>(
      `DELETE FROM durable_blobs d WHERE d.sha256 = ANY(?) AND NOT ${REFERENCED} RETURNING d.sha256, d.blob_name, d.unreferenced_since`,
      [locked.map((r) => r.sha256)],
    );
    return rows;
  });
}
