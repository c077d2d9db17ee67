import type { Knex } from './knex.js';

export interface LikeState {
  liked: boolean;
  likeCount: number;
}

/**
 * Adds (`liked: true`) or removes the user's like of a ready, unhidden snapshot, idempotently, and
 * returns the state after it; undefined when there is no such snapshot.
 *
 * One transaction: lock the snapshot row, insert or delete the like, and move `like_count` by one
 * only when a row really was inserted (ON CONFLICT DO NOTHING returned it) or deleted. The lock
 * orders every like of one snapshot, so the count equals the likes table whatever runs at once.
 */
export async function setLike(knex: Knex, userId: string, snapshotId: number, liked: boolean): Promise<LikeState | undefined> {
  return knex.transaction(async (trx) => {
    // FOR NO KEY UPDATE: it orders likes of this snapshot, and still lets other transactions'
    // foreign-key checks (KEY SHARE) on the row through.
    // A hidden item is not in anyone's feed: it cannot be liked (or unliked) until it is shown again.
    const snapshot = (await trx('community_snapshots').where({ id: snapshotId, status: 'ready', is_hidden: false }).forNoKeyUpdate().first('id', 'like_count')) as
      | { id: number; like_count: number }
      | undefined;
    if (!snapshot) return undefined;
    const changed = liked
      ? await trx('community_likes').insert({ user_id: userId, snapshot_id: snapshotId }).onConflict(['user_id', 'snapshot_id']).ignore().returning('snapshot_id')
      : await trx('community_likes').where({ user_id: userId, snapshot_id: snapshotId }).del().returning('snapshot_id');
    if (changed.length === 0) return { liked, likeCount: snapshot.like_count };
    const [row] = (await trx('community_snapshots')
      .where({ id: snapshotId })
      .update({ like_count: trx.raw('like_count + ?', [liked ? 1 : -1]) })
      .returning('like_count')) as { like_count: number }[];
    return { liked, likeCount: row!.like_count };
  });
}
