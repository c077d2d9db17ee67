import { prepared, preparedQuery, type Knex } from './knex.js';
import { COMPLETABLE_OUTBOX_ROW } from './outbox.js';
import type { MediaPreviews, SessionMediaRow, SessionRow, SnapshotRow } from './types.js';

/** A media item as a sync writes it (its order is its place in the list). */
// A sync writes media by URL; only a saved copy's items reference a durable blob.
export type NewSessionMedia = Omit<SessionMediaRow, 'id' | 'session_id' | 'order' | 'blob_sha256'> & { blob_sha256?: string | null };

/** Columns a create or an update may set (everything but id, user, version and timestamps). */
export type SessionChanges = Partial<
  Omit<SessionRow, 'id' | 'user_id' | 'version' | 'created_at' | 'updated_at' | 'media_subreddits'>
>;

export interface SessionListFilter {
  userId: string;
  categoryId?: number;
  limit: number;
  offset: number;
}

export async function insertSession(
  trx: Knex.Transaction,
  userId: string,
  values: SessionChanges & Pick<SessionRow, 'title' | 'category_id' | 'caption_theme'>,
): Promise<SessionRow> {
  const [row] = await trx<SessionRow>('sessions')
    .insert({ ...values, user_id: userId })
    .returning('*');
  return row!;
}

export type SnapshotRef = Pick<SnapshotRow, 'id' | 'status'>;

// The statements of every PATCH are SQL text run straight through node-postgres (preparedQuery)
// rather than query-builder calls: the builder would compile the same statement again on each
// request, and knex's query path cost about as much CPU again, a good part of the API's under load.
const READ_SESSION = `SELECT s.*, s.xmin::text AS row_version, cs.id AS snapshot_id, cs.status AS snapshot_status
  FROM sessions s LEFT JOIN community_snapshots cs ON cs.session_id = s.id
  WHERE s.id = $1 LIMIT 1`;
const LOCK_SESSION = `${READ_SESSION} FOR UPDATE OF s`;

/**
 * A session row with its live snapshot (every PATCH needs both), and `rowVersion`: the row's xmin,
 * which any write to the row changes (a user's edit, and also a worker's, which does not bump
 * `version`), so a write guarded by it applies only to the row exactly as read.
 */
export interface SessionForPatch {
  session: SessionRow;
  snapshot: SnapshotRef | null;
  rowVersion: string;
}

async function sessionForPatch(db: Knex, statement: 'session-lock' | 'session-read', id: number): Promise<SessionForPatch | undefined> {
  const [row] = await preparedQuery<SessionRow & { row_version: string; snapshot_id: number | null; snapshot_status: SnapshotRow['status'] | null }>(
    db,
    statement,
    statement === 'session-lock' ? LOCK_SESSION : READ_SESSION,
    [id],
  );
  if (!row) return undefined;
  const { row_version: rowVersion, snapshot_id: snapshotId, snapshot_status: status, ...session } = row;
  return { session, snapshot: snapshotId === null || status === null ? null : { id: snapshotId, status }, rowVersion };
}

/** Locks the session row for the rest of the transaction and reads its live snapshot in the same round trip. */
export function lockSession(trx: Knex.Transaction, id: number): Promise<SessionForPatch | undefined> {
  return sessionForPatch(trx, 'session-lock', id);
}

/** The same row as {@link lockSession}, read without a lock (for a write guarded by its `rowVersion`). */
export function readSessionForPatch(knex: Knex, id: number): Promise<SessionForPatch | undefined> {
  return sessionForPatch(knex, 'session-read', id);
}

export async function findSession(knex: Knex, id: number): Promise<SessionRow | undefined> {
  return knex<SessionRow>('sessions').where({ id }).first();
}

/**
 * Applies the changes to the locked row `current`, bumps the version and moves `updated_at` forward
 * (strictly: two changes in the same millisecond still give distinct, increasing timestamps).
 * Returns the row as written: `current` with the changes, and the version and time Postgres gave it
 * (only those two come back: parsing the whole row again was a measurable part of a PATCH's CPU).
 */
export async function updateSession(trx: Knex.Transaction, current: SessionRow, changes: SessionChanges): Promise<SessionRow> {
  const written = await writeSession(trx, current, changes, null);
  if (!written) throw new Error(`session ${current.id} vanished under its row lock`);
  return written;
}

/**
 * {@link updateSession} without a lock, in one statement: applied only while the row is still the
 * one read (`rowVersion`, see {@link SessionForPatch}); undefined when anything wrote it since.
 */
export function updateSessionIfUnchanged(knex: Knex, current: SessionRow, rowVersion: string, changes: SessionChanges): Promise<SessionRow | undefined> {
  return writeSession(knex, current, changes, rowVersion);
}

async function writeSession(db: Knex, current: SessionRow, changes: SessionChanges, rowVersion: string | null): Promise<SessionRow | undefined> {
  // Sorted: the SQL depends only on which columns change, and on whether it is guarded.
  const columns = (Object.keys(changes) as (keyof SessionChanges)[]).sort();
  const key = `${rowVersion === null ? '' : 'if-unchanged:'}${columns.join(',')}`;
  let sql = updateStatements.get(key);
  const kept = sql !== undefined;
  if (sql === undefined) {
    // Column names come from SessionChanges' keys (the plan's), never from a request.
    const set = columns.map((c, i) => `"${c}" = $${i + 2}, `).join('');
    const guard = rowVersion === null ? '' : ` AND xmin = $${columns.length + 2}::text::xid`;
    sql = `UPDATE sessions SET ${set}version = version + 1, updated_at = greatest(now(), updated_at + interval '1 millisecond') WHERE id = $1${guard} RETURNING version, updated_at`;
    if (updateStatements.size < MAX_PREPARED_SESSION_UPDATES) updateStatements.set(key, sql);
  }
  const values: unknown[] = [current.id, ...columns.map((c) => changes[c])];
  if (rowVersion !== null) values.push(rowVersion);
  const name = kept || updateStatements.has(key) ? `session-update:${key}` : null;
  const [written] = await preparedQuery<Pick<SessionRow, 'version' | 'updated_at'>>(db, name, sql, values);
  return written && { ...current, ...changes, version: written.version, updated_at: written.updated_at };
}

/**
 * How many changed-column sets get a prepared UPDATE of their own: clients choose which fields a
 * PATCH sends, so the sets are many in principle but few in practice (the common ones come first
 * and stay). A set past the bound runs as an unnamed statement, kept by no connection.
 */
export const MAX_PREPARED_SESSION_UPDATES = 64;

/** The UPDATE of each changed-column set, guarded or not, up to {@link MAX_PREPARED_SESSION_UPDATES}. */
const updateStatements = new Map<string, string>();

export async function deleteSessionRow(trx: Knex.Transaction, id: number): Promise<void> {
  await trx('sessions').where({ id }).del();
}

export async function listSessions(
  knex: Knex,
  filter: SessionListFilter,
): Promise<{ rows: SessionRow[]; total: number }> {
  const base = knex<SessionRow>('sessions').where({ user_id: filter.userId });
  if (filter.categoryId !== undefined) base.andWhere({ category_id: filter.categoryId });
  const [rows, countRow] = await Promise.all([
    base
      .clone()
      .orderBy([
        { column: 'created_at', order: 'desc' },
        { column: 'id', order: 'desc' },
      ])
      .limit(filter.limit)
      .offset(filter.offset),
    base.clone().count<{ count: number }[]>({ count: '*' }).first(),
  ]);
  return { rows: rows as SessionRow[], total: Number(countRow?.count ?? 0) };
}

export async function listSessionMedia(knex: Knex, sessionId: number): Promise<SessionMediaRow[]> {
  return knex<SessionMediaRow>('session_media').where({ session_id: sessionId }).orderBy('order');
}

/** The live snapshot of each given session, keyed by session id. */
export async function snapshotsForSessions(
  knex: Knex,
  sessionIds: number[],
): Promise<Map<number, Pick<SnapshotRow, 'id' | 'status' | 'session_id'>>> {
  if (sessionIds.length === 0) return new Map();
  const rows = await knex<SnapshotRow>('community_snapshots')
    .whereIn('session_id', sessionIds)
    .select('id', 'status', 'session_id');
  return new Map(rows.map((r) => [r.session_id, r]));
}

export interface ThumbnailSelection {
  sessionIds?: number[];
  userIds?: string[];
  /** Every session whose thumbnail is generated (not custom). */
  allAuto?: boolean;
  /** Also replace custom thumbnails chosen by users. */
  includeCustom?: boolean;
}

/** The sessions whose thumbnails a selection names, by id. */
export async function selectThumbnailSessions(knex: Knex, selection: ThumbnailSelection): Promise<Pick<SessionRow, 'id' | 'thumbnail_source'>[]> {
  const q = knex<SessionRow>('sessions').select('id', 'thumbnail_source').orderBy('id');
  if (!selection.includeCustom) q.where({ thumbnail_source: 'auto' });
  if (selection.allAuto) return q;
  if (!selection.sessionIds?.length && !selection.userIds?.length) return [];
  return q.where((w) => {
    if (selection.sessionIds?.length) w.orWhereIn('id', selection.sessionIds);
    if (selection.userIds?.length) w.orWhereIn('user_id', selection.userIds);
  });
}

/** Moves each session to a new, automatic thumbnail generation; returns the new generations by id. */
export async function advanceThumbnailGenerations(trx: Knex.Transaction, ids: number[]): Promise<Pick<SessionRow, 'id' | 'thumbnail_generation'>[]> {
  const rows: Pick<SessionRow, 'id' | 'thumbnail_generation'>[] = await trx('sessions')
    .whereIn('id', ids)
    .update({ thumbnail_generation: trx.raw('thumbnail_generation + 1'), thumbnail_source: 'auto' })
    .returning(['id', 'thumbnail_generation']);
  return rows.sort((a, b) => a.id - b.id);
}

/**
 * A media sync's write, in its transaction: claims the session for media from `subreddits` and
 * replaces its media with `items`, in three statements whatever the number of items. The claim sets
 * `media_subreddits` (taking the row lock) only while the session's subreddits are still those, it
 * keeps no media of its own (manual mode, imported) and its media are not from them already; the
 * job's outbox row `completedOutboxId` is marked completed in the same statement, so the record
 * commits with the media. False when the session was not claimed: nothing was written.
 */
export async function writeSyncedMedia(
  trx: Knex.Transaction,
  write: { sessionId: number; subreddits: string[]; items: NewSessionMedia[]; completedOutboxId: number | null },
): Promise<boolean> {
  const claimed = await preparedQuery(trx, 'media-sync-claim', MEDIA_SYNC_CLAIM, [write.sessionId, write.subreddits, write.completedOutboxId]);
  if (claimed.length === 0) return false;
  await preparedQuery(trx, 'media-sync-delete', 'DELETE FROM session_media WHERE session_id = $1', [write.sessionId]);
  if (write.items.length > 0) {
    // One jsonb parameter, so one prepared statement serves any number of items.
    const rows = JSON.stringify(write.items.map((m, order) => ({ ...m, order })));
    await preparedQuery(trx, 'media-sync-insert', MEDIA_SYNC_INSERT, [write.sessionId, rows]);
  }
  return true;
}

const MEDIA_SYNC_CLAIM = `WITH claimed AS (
       UPDATE sessions SET media_subreddits = $2::text[]
        WHERE id = $1 AND subreddits = $2::text[] AND NOT is_manual_mode AND NOT is_imported AND media_subreddits IS DISTINCT FROM $2::text[]
    RETURNING id),
     completed AS (
       UPDATE job_outbox SET finished_at = now(), final_state = 'completed'
        WHERE id = $3::bigint AND ${COMPLETABLE_OUTBOX_ROW} AND EXISTS (SELECT 1 FROM claimed))
     SELECT id FROM claimed`;

const MEDIA_SYNC_INSERT = `INSERT INTO session_media (session_id, "order", media_url, thumbnail, caption, type, reddit_post_id, reddit_post_url, subreddit, previews, blob_sha256)
  SELECT $1, i."order", i.media_url, i.thumbnail, i.caption, i.type, i.reddit_post_id, i.reddit_post_url, i.subreddit, i.previews, i.blob_sha256
    FROM jsonb_to_recordset($2::jsonb) AS i("order" integer, media_url text, thumbnail text, caption text, type text, reddit_post_id text,
                                             reddit_post_url text, subreddit text, previews jsonb, blob_sha256 text)`;

/**
 * The session's first image (a gif or video's still when there is no image) with that item's
 * listing previews, read with the session.
 */
const THUMBNAIL_SOURCE = `LEFT JOIN LATERAL (
  SELECT c.url, c.previews FROM (
    (SELECT m.media_url AS url, m.previews, 0 AS rank FROM session_media m
      WHERE m.session_id = s.id AND m.type = 'image' ORDER BY m."order" LIMIT 1)
    UNION ALL
    (SELECT m.thumbnail, m.previews, 1 FROM session_media m
      WHERE m.session_id = s.id AND m.thumbnail <> '' ORDER BY m."order" LIMIT 1)
  ) c ORDER BY c.rank LIMIT 1
) src ON true`;

/**
 * The session with the URL its thumbnail is rendered from (null when it has no media to show) and
 * that item's listing previews (null when the listing gave none).
 */
export async function findSessionWithThumbnailSource(
  knex: Knex,
  id: number,
): Promise<(SessionRow & { source_url: string | null; source_previews: MediaPreviews | null }) | undefined> {
  return knex('sessions as s')
    .joinRaw(THUMBNAIL_SOURCE)
    .where('s.id', id)
    .first('s.*', 'src.url as source_url', 'src.previews as source_previews')
    .options(prepared('thumbnail-session-previews'));
}

/**
 * Sets the generated thumbnail only while `generation` is still the session's and its thumbnail is
 * automatic, and, when it does, marks the job's outbox row `completedOutboxId` completed in the same
 * statement (so the effect and its completion record commit together, in one round trip). Returns
 * the blob of the generation it replaced (null if none), or undefined when the write did not happen
 * (stale generation, custom thumbnail, or the session is gone).
 *
 * `s.id = $3` is said twice on purpose: the locking subquery is not pulled up, so the planner cannot
 * carry its `id = $3` over to `s`. Without it the generic plan a prepared statement keeps joined
 * every row of a small `sessions` table against the locked one (a nested loop over seq scans:
 * 15–37 ms a call on 600 sessions in `npm run bench -- --only thumbnails`, 0.5 ms with it).
 */
export async function writeGeneratedThumbnail(
  knex: Knex,
  write: { sessionId: number; generation: number; url: string; blobName: string; completedOutboxId: number | null },
): Promise<{ previous: string | null } | undefined> {
  const rows = await preparedQuery<{ previous: string | null }>(knex, 'thumbnail-write', THUMBNAIL_WRITE.text, [
    write.url,
    write.blobName,
    write.sessionId,
    write.generation,
    write.completedOutboxId,
  ]);
  return rows[0];
}

/** {@link writeGeneratedThumbnail}'s statement, with its parameters' types (for its plan's test). */
export const THUMBNAIL_WRITE = {
  text: `WITH written AS (
       UPDATE sessions s SET thumbnail = $1, thumbnail_blob = $2
         FROM (SELECT id, thumbnail_blob FROM sessions WHERE id = $3 FOR UPDATE) old
        WHERE s.id = $3 AND s.id = old.id AND s.thumbnail_generation = $4 AND s.thumbnail_source = 'auto'
    RETURNING old.thumbnail_blob AS previous),
     completed AS (
       UPDATE job_outbox SET finished_at = now(), final_state = 'completed'
        WHERE id = $5 AND ${COMPLETABLE_OUTBOX_ROW} AND EXISTS (SELECT 1 FROM written))
     SELECT previous FROM written`,
  types: ['text', 'text', 'integer', 'integer', 'bigint'],
};
