import { prepared, type Knex } from './knex.js';
import type { SnapshotRow } from './types.js';

/** What a saved copy records as its origin (docs/api.md §8): `community:<snapshot id>`. */
export const communityImportUrl = (snapshotId: number): string => `community:${snapshotId}`;

/**
 * Locks a ready, unhidden snapshot against removal for the rest of the transaction, and returns it
 * with the durable hashes its copy will reference (`missing`: items without one, which cannot be
 * saved without moving bytes). `FOR KEY SHARE`: an unshare's DELETE waits for the save to commit,
 * while likes (which update the row) are not held up. Undefined when there is no such snapshot.
 */
export async function lockSavableSnapshot(
  trx: Knex.Transaction,
  snapshotId: number,
): Promise<{ snapshot: SnapshotRow; hashes: string[]; missing: number } | undefined> {
  const snapshot = (await trx<SnapshotRow>('community_snapshots')
    .where({ id: snapshotId, status: 'ready', is_hidden: false })
    .forKeyShare()
    .first()) as SnapshotRow | undefined;
  if (!snapshot) return undefined;
  const items = (await trx('community_snapshot_media').where({ snapshot_id: snapshotId }).select('blob_sha256')) as { blob_sha256: string | null }[];
  const hashes = items.flatMap((i) => (i.blob_sha256 ? [i.blob_sha256] : []));
  if (snapshot.thumbnail_sha256) hashes.push(snapshot.thumbnail_sha256);
  return { snapshot, hashes, missing: items.length - items.filter((i) => i.blob_sha256).length };
}

/**
 * Inserts the user's private copy of the snapshot, unless the user has one already (the
 * sessions_community_saves index decides, also between concurrent saves). Returns the new session's
 * id, or undefined when a copy exists.
 *
 * The copy takes the snapshot's title, settings, subreddits and category, and its durable thumbnail
 * as a custom one (no thumbnail job); `media_subreddits` are its subreddits, so no media sync
 * replaces the media copied with it.
 */
export async function insertSavedSession(trx: Knex.Transaction, userId: string, snapshot: SnapshotRow): Promise<number | undefined> {
  const { rows } = await trx
    .raw<{ rows: { id: number }[] }>(
      `INSERT INTO sessions (user_id, title, subreddits, category_id, category_source, interval_min, interval_max, transition,
                             caption_theme, ai_prompt, is_manual_mode, is_imported, import_source, import_url,
                             thumbnail, thumbnail_source, thumbnail_sha256, media_subreddits, is_public, share_to_community)
       SELECT ?, s.title, s.subreddits, s.category_id,
              CASE WHEN c.is_default THEN 'default' ELSE 'manual' END,
              s.interval_min, s.interval_max, s.transition, s.caption_theme, s.ai_prompt, s.is_manual_mode, s.is_imported,
              'community', ?, s.thumbnail_url,
              CASE WHEN s.thumbnail_url IS NULL THEN 'auto' ELSE 'custom' END,
              s.thumbnail_sha256, s.subreddits, false, false
         FROM community_snapshots s JOIN categories c ON c.id = s.category_id
        WHERE s.id = ?
       ON CONFLICT (user_id, import_url) WHERE import_source = 'community' DO NOTHING
       RETURNING id`,
      [userId, communityImportUrl(snapshot.id), snapshot.id],
    )
    .options(prepared('saved-session-insert'));
  return rows[0]?.id;
}

/** The user's saved copy of the snapshot, if any. */
export async function findSavedSessionId(knex: Knex | Knex.Transaction, userId: string, snapshotId: number): Promise<number | undefined> {
  const row = (await knex('sessions')
    .where({ user_id: userId, import_source: 'community', import_url: communityImportUrl(snapshotId) })
    .first('id')) as { id: number } | undefined;
  return row?.id;
}

/**
 * Gives the saved session the snapshot's media, in order with their captions, each a reference to
 * the same durable blob (its URL and hash): no bytes move. Call with those blobs held.
 */
export async function copySnapshotMediaToSession(trx: Knex.Transaction, snapshotId: number, sessionId: number): Promise<number> {
  const { rowCount } = await trx
    .raw(
      `INSERT INTO session_media (session_id, media_url, caption, type, reddit_post_id, reddit_post_url, subreddit, "order", blob_sha256)
       SELECT ?, m.blob_url, m.caption, m.type, m.reddit_post_id, m.reddit_post_url, m.subreddit, m."order", m.blob_sha256
         FROM community_snapshot_media m
        WHERE m.snapshot_id = ?
        ORDER BY m."order"`,
      [sessionId, snapshotId],
    )
    .options(prepared('saved-session-media'));
  return rowCount ?? 0;
}
