import type { Knex } from './knex.js';
import type { SessionRow, SnapshotRow } from './types.js';

/** Creates the session's snapshot row from its current metadata (status `pending`). */
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
    })
    .returning('*');
  return row!;
}

export async function findSnapshotBySession(knex: Knex, sessionId: number): Promise<SnapshotRow | undefined> {
  return knex<SnapshotRow>('community_snapshots').where({ session_id: sessionId }).first();
}

export async function findSnapshot(knex: Knex, id: number): Promise<SnapshotRow | undefined> {
  return knex<SnapshotRow>('community_snapshots').where({ id }).first();
}

/** Deletes the snapshot row (its media rows cascade); returns the deleted id, if any. */
export async function deleteSnapshotOfSession(trx: Knex.Transaction, sessionId: number): Promise<number | undefined> {
  const rows = await trx('community_snapshots').where({ session_id: sessionId }).del().returning('id');
  return (rows[0] as { id: number } | undefined)?.id;
}
