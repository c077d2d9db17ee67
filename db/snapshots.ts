import { holdDurableBlobsSql, recordDurableBlobsSql } from './durable-blobs.js';
import { boundedCount } from './counts.js';
import { preparedQuery, type Knex } from './knex.js';
import { SNAPSHOT_STATUSES, type SessionMediaRow, type SessionRow, type SnapshotMediaRow, type SnapshotRow, type SnapshotStatus } from './types.js';

/**
 * Creates the session's snapshot row from its current metadata (status `pending`), hidden when the
 * session carries a hide (moderation belongs to the session: sharing again does not undo it).
 */
export async function insertSnapshotFromSession(trx: Knex.Transaction, session: SessionRow): Promise<SnapshotRow> {
  const [row] = await trx<SnapshotRow>('community_snapshots')
    .insert({
      session_id: session.id,
      user_id: session.user_id,
      title: session.title,
      subreddits: session.subreddits,
      category_id: session.category_id,
      interval_min: session.interval_min,
      interval_max: session.interval_max,
      transition: session.transition,
      caption_theme: session.caption_theme,
      ai_prompt: session.ai_prompt,
      is_manual_mode: session.is_manual_mode,
      is_imported: session.is_imported,
      source_thumbnail: session.thumbnail,
      is_hidden: session.community_moderation === 'hidden',
      hidden_at: session.community_moderation === 'hidden' ? session.community_moderated_at : null,
    })
    .returning('*');
  return row!;
}

export async function findSnapshotBySession(knex: Knex, sessionId: number): Promise<SnapshotRow | undefined> {
  return knex<SnapshotRow>('community_snapshots').where({ session_id: sessionId }).first();
}

/** Status counts are exact up to this many snapshots each and the planner's estimate above it. */
export const SNAPSHOT_STATUS_EXACT_COUNT = 1000;

/**
 * How many snapshots are in each status (every status present, 0 when none): one bounded count per
 * status on community_snapshots_status, so the ready snapshots of a year are not counted one by one.
 */
export async function countSnapshotsByStatus(knex: Knex): Promise<Record<SnapshotStatus, number>> {
  const counted = await Promise.all(
    SNAPSHOT_STATUSES.map(async (status) => [status, (await boundedCount(knex, knex('community_snapshots').where({ status }), SNAPSHOT_STATUS_EXACT_COUNT, `snapshots ${status}`)).count] as const),
  );
  return Object.fromEntries(counted) as Record<SnapshotStatus, number>;
}

/** A page of snapshots, newest first, optionally of one status, with the total. */
export async function listSnapshotsPage(
  knex: Knex,
  filter: { status?: SnapshotStatus; limit: number; offset: number },
): Promise<{ rows: SnapshotRow[]; total: number }> {
  const base = knex<SnapshotRow>('community_snapshots');
  if (filter.status) base.where({ status: filter.status });
  const [rows, count] = await Promise.all([
    base.clone().orderBy('id', 'desc').limit(filter.limit).offset(filter.offset),
    base.clone().count<{ count: string }[]>({ count: '*' }).first(),
  ]);
  return { rows: rows as SnapshotRow[], total: Number(count?.count ?? 0) };
}

export async function findSnapshot(knex: Knex, id: number): Promise<SnapshotRow | undefined> {
  return knex<SnapshotRow>('community_snapshots').where({ id }).first();
}

/** Locks the snapshot row; undefined once it has been removed (unshared or its session deleted). */
export async function lockSnapshot(trx: Knex.Transaction, id: number): Promise<SnapshotRow | undefined> {
  return trx<SnapshotRow>('community_snapshots').where({ id }).forUpdate().first();
}

/** Deletes the snapshot row (its media rows cascade); returns the deleted id, if any. */
export async function deleteSnapshotOfSession(trx: Knex.Transaction, sessionId: number): Promise<number | undefined> {
  const rows = await trx('community_snapshots').where({ session_id: sessionId }).del().returning('id');
  return (rows[0] as { id: number } | undefined)?.id;
}

export interface SnapshotSelection {
  snapshotIds?: number[];
  sessionIds?: number[];
  statuses?: SnapshotStatus[];
  all?: boolean;
}

/** The snapshots a selection names (any of its ids, sessions or statuses), oldest first. */
export async function selectSnapshots(knex: Knex, selection: SnapshotSelection): Promise<SnapshotRow[]> {
  const q = knex<SnapshotRow>('community_snapshots').orderBy('id');
  if (selection.all) return q;
  if (!selection.snapshotIds?.length && !selection.sessionIds?.length && !selection.statuses?.length) return [];
  return q.where((w) => {
    if (selection.snapshotIds?.length) w.orWhereIn('id', selection.snapshotIds);
    if (selection.sessionIds?.length) w.orWhereIn('session_id', selection.sessionIds);
    if (selection.statuses?.length) w.orWhereIn('status', selection.statuses);
  });
}

/** Locks the snapshots for a rerun and puts the failed ones back to `pending` (their last error kept). */
export async function lockSnapshotsForRerun(trx: Knex.Transaction, ids: number[]): Promise<SnapshotRow[]> {
  const rows = await trx<SnapshotRow>('community_snapshots').whereIn('id', ids).forUpdate().orderBy('id');
  const failed = rows.filter((r) => r.status === 'failed').map((r) => r.id);
  if (failed.length > 0) await trx('community_snapshots').whereIn('id', failed).update({ status: 'pending', updated_at: trx.fn.now() });
  return rows;
}

/** A copy run begins: `copying` (unless already `ready`), one more attempt. */
export async function markSnapshotCopying(knex: Knex, id: number): Promise<void> {
  await knex('community_snapshots')
    .where({ id })
    .whereNot({ status: 'ready' })
    .update({ status: 'copying', attempts: knex.raw('attempts + 1'), updated_at: knex.fn.now() });
}

export async function snapshotHasMediaList(knex: Knex | Knex.Transaction, snapshotId: number): Promise<boolean> {
  return (await knex('community_snapshot_media').where({ snapshot_id: snapshotId }).first('id')) !== undefined;
}

/** Fixes the snapshot's media list (in the caller's transaction, with the snapshot locked) from the session's media. */
export async function insertSnapshotMediaList(trx: Knex.Transaction, snapshotId: number, media: SessionMediaRow[]): Promise<void> {
  if (media.length > 0) {
    await trx('community_snapshot_media').insert(
      media.map((m) => ({
        snapshot_id: snapshotId,
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
  await trx('community_snapshots').where({ id: snapshotId }).update({ media_count: media.length, updated_at: trx.fn.now() });
}

export async function listSnapshotItems(knex: Knex, snapshotId: number): Promise<SnapshotMediaRow[]> {
  return knex<SnapshotMediaRow>('community_snapshot_media').where({ snapshot_id: snapshotId }).orderBy('order');
}

/** One copied item: its durable blob (uploaded by this copy, or reused) and what its source served. */
export interface CopiedItem {
  itemId: number;
  sha256: string;
  blobName: string;
  url: string;
  /** The item's type as its source served it. */
  contentType: string;
  bytes: number;
  /** This copy uploaded the blob: its row is recorded here (`blobContentType` is the row's type). */
  uploaded: boolean;
  blobContentType: string;
  /**
   * What to remember of the source for the next copy (`media_sources`): its URL, strong ETag and
   * how long its bytes stay current; null to leave what is remembered as it is.
   */
  source: { url: string; etag: string; freshForSeconds: number } | null;
}

/**
 * Records a batch of copied items in one statement (so in one transaction, with one round trip):
 * the durable rows of the blobs this copy uploaded (a row another copy of the same bytes recorded
 * meanwhile is kept), every other blob held `FOR SHARE` (the collector skips held rows and checks
 * references again after), the items' references, the snapshot's counts and what each source served.
 * An item whose reused blob was collected since it was found (its row is gone) is left out; each
 * item is recorded once even when two runs copy it (the bytes, and so the blob, are the same).
 * Returns the hashes held and the item ids this call recorded.
 */
export async function recordSnapshotCopies(knex: Knex, snapshotId: number, copies: readonly CopiedItem[]): Promise<{ held: Set<string>; recorded: Set<number> }> {
  if (copies.length === 0) return { held: new Set(), recorded: new Set() };
  const rows = await preparedQuery<{ held: string[] | null; recorded: number[] | null }>(
    knex,
    'record-snapshot-copies',
    `WITH copy AS (
       SELECT * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::boolean[], $9::text[], $10::text[], $11::text[], $12::int[])
                  AS c(id, sha256, blob_name, blob_url, content_type, bytes, uploaded, blob_content_type, source_url, etag, fresh_for)),
     added AS (
       ${recordDurableBlobsSql('SELECT DISTINCT ON (sha256) sha256, blob_name, blob_content_type, bytes FROM copy WHERE uploaded ORDER BY sha256')}
       RETURNING sha256),
     existing AS (${holdDurableBlobsSql('ARRAY(SELECT sha256 FROM copy)')}),
     held AS (SELECT sha256 FROM added UNION SELECT sha256 FROM existing),
     item AS (
       UPDATE community_snapshot_media m
          SET blob_name = c.blob_name, blob_url = c.blob_url, content_type = c.content_type, bytes = c.bytes,
              checksum = c.sha256, blob_sha256 = c.sha256, copied_at = now()
         FROM copy c
        WHERE m.id = c.id AND m.snapshot_id = $1 AND m.copied_at IS NULL AND c.sha256 IN (SELECT sha256 FROM held)
    RETURNING m.id, m.bytes),
     source AS (
       INSERT INTO media_sources (source_url, etag, content_type, sha256, fresh_until)
       SELECT DISTINCT ON (source_url) source_url, etag, content_type, sha256, now() + make_interval(secs => fresh_for) FROM copy
        WHERE etag IS NOT NULL AND sha256 IN (SELECT sha256 FROM held) ORDER BY source_url
       ON CONFLICT (source_url) DO UPDATE
         SET etag = excluded.etag, content_type = excluded.content_type, sha256 = excluded.sha256, fetched_at = now(), fresh_until = excluded.fresh_until),
     counted AS (
       UPDATE community_snapshots
          SET copied_count = copied_count + (SELECT count(*) FROM item),
              bytes_copied = bytes_copied + coalesce((SELECT sum(bytes) FROM item), 0)
        WHERE id = $1)
     SELECT (SELECT array_agg(sha256) FROM held) AS held, (SELECT array_agg(id) FROM item) AS recorded`,
    [
      snapshotId,
      copies.map((c) => c.itemId),
      copies.map((c) => c.sha256),
      copies.map((c) => c.blobName),
      copies.map((c) => c.url),
      copies.map((c) => c.contentType),
      copies.map((c) => c.bytes),
      copies.map((c) => c.uploaded),
      copies.map((c) => c.blobContentType),
      copies.map((c) => c.source?.url ?? null),
      copies.map((c) => c.source?.etag ?? null),
      copies.map((c) => c.source?.freshForSeconds ?? null),
    ],
  );
  return { held: new Set(rows[0]?.held ?? []), recorded: new Set((rows[0]?.recorded ?? []).map(Number)) };
}

/**
 * Ends the copy as `ready` (in the caller's transaction, with the snapshot locked, and the given
 * thumbnail's durable blob held). The thumbnail is the one given, else the one the snapshot has,
 * else its first copied image (held by that item's reference).
 */
export async function markSnapshotReady(
  trx: Knex.Transaction,
  snapshot: SnapshotRow,
  thumbnail: { blobName: string; url: string; sha256: string } | null,
): Promise<void> {
  let chosen: { blobName: string | null; url: string | null; sha256: string | null } | null = thumbnail;
  if (!chosen && !snapshot.thumbnail_url) {
    const first = await trx<SnapshotMediaRow>('community_snapshot_media')
      .where({ snapshot_id: snapshot.id, type: 'image' })
      .orderBy('order')
      .first('blob_url', 'blob_name', 'blob_sha256');
    chosen = { blobName: first?.blob_name ?? null, url: first?.blob_url ?? null, sha256: first?.blob_sha256 ?? null };
  }
  await trx('community_snapshots')
    .where({ id: snapshot.id })
    .update({
      status: 'ready',
      ready_at: trx.fn.now(),
      updated_at: trx.fn.now(),
      last_error: null,
      ...(chosen ? { thumbnail_blob_name: chosen.blobName, thumbnail_url: chosen.url, thumbnail_sha256: chosen.sha256 } : {}),
    });
}

/** Records why a copy run failed; `final` also ends the snapshot as `failed` unless it got to `ready` meanwhile. */
export async function recordSnapshotError(knex: Knex, id: number, reason: string, final: boolean): Promise<void> {
  const q = knex('community_snapshots').where({ id });
  if (final) q.whereNot({ status: 'ready' });
  await q.update({ last_error: reason.slice(0, 2000), updated_at: knex.fn.now(), ...(final ? { status: 'failed' } : {}) });
}

/** A snapshot copied before content addressing: its copied items and thumbnail still under `snapshots/<id>/`. */
export interface LegacySnapshot {
  id: number;
  items: { id: number; blob_name: string; content_type: string | null; checksum: string | null }[];
  /** The thumbnail's old blob, when it has one not moved yet. */
  thumbnailBlobName: string | null;
}

/** Every snapshot with an item or thumbnail not moved to a durable blob yet, oldest first (`npm run media:migrate`). */
export async function listLegacySnapshots(knex: Knex): Promise<LegacySnapshot[]> {
  const items = (await knex('community_snapshot_media')
    .whereNull('blob_sha256')
    .whereNotNull('copied_at')
    .where('blob_name', 'like', 'snapshots/%')
    .orderBy(['snapshot_id', 'order'])
    .select('snapshot_id', 'id', 'blob_name', 'content_type', 'checksum')) as (LegacySnapshot['items'][number] & { snapshot_id: number })[];
  const thumbnails = (await knex('community_snapshots')
    .whereNull('thumbnail_sha256')
    .where('thumbnail_blob_name', 'like', 'snapshots/%')
    .select('id', 'thumbnail_blob_name')) as { id: number; thumbnail_blob_name: string }[];
  const byId = new Map<number, LegacySnapshot>();
  const of = (id: number): LegacySnapshot => {
    let s = byId.get(id);
    if (!s) byId.set(id, (s = { id, items: [], thumbnailBlobName: null }));
    return s;
  };
  for (const t of thumbnails) of(t.id).thumbnailBlobName = t.thumbnail_blob_name;
  for (const { snapshot_id, ...item } of items) of(snapshot_id).items.push(item);
  return [...byId.values()].sort((a, b) => a.id - b.id);
}

/** Points a legacy item at its durable blob (in a transaction holding it); a no-op once moved. */
export async function moveLegacySnapshotItem(trx: Knex.Transaction, itemId: number, oldBlobName: string, blob: { sha256: string; blobName: string; url: string }): Promise<void> {
  await trx('community_snapshot_media')
    .where({ id: itemId, blob_name: oldBlobName })
    .whereNull('blob_sha256')
    .update({ blob_sha256: blob.sha256, blob_name: blob.blobName, blob_url: blob.url });
}

/** Points a legacy snapshot's thumbnail at its durable blob (in a transaction holding it); a no-op once moved. */
export async function moveLegacySnapshotThumbnail(trx: Knex.Transaction, snapshotId: number, oldBlobName: string, blob: { sha256: string; blobName: string; url: string }): Promise<void> {
  await trx('community_snapshots')
    .where({ id: snapshotId, thumbnail_blob_name: oldBlobName })
    .whereNull('thumbnail_sha256')
    .update({ thumbnail_sha256: blob.sha256, thumbnail_blob_name: blob.blobName, thumbnail_url: blob.url });
}
