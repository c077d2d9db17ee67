import type { Knex } from './knex.js';
import { SNAPSHOT_STATUSES, type SessionRow, type SnapshotRow, type SnapshotStatus } from './types.js';

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

/** How many snapshots are in each status (every status present, 0 when none). */
export async function countSnapshotsByStatus(knex: Knex): Promise<Record<SnapshotStatus, number>> {
  const rows = await knex('community_snapshots').select('status').count<{ status: SnapshotStatus; count: string }[]>({ count: '*' }).groupBy('status');
  const counts = Object.fromEntries(SNAPSHOT_STATUSES.map((s) => [s, 0])) as Record<SnapshotStatus, number>;
  for (const r of rows) counts[r.status] = Number(r.count);
  return counts;
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

/** Deletes the snapshot row (its media rows cascade); returns the deleted id, if any. */
export async function deleteSnapshotOfSession(trx: Knex.Transaction, sessionId: number): Promise<number | undefined> {
  const rows = await trx('community_snapshots').where({ session_id: sessionId }).del().returning('id');
  return (rows[0] as { id: number } | undefined)?.id;
}
