import type { Knex } from './knex.js';
import type { CommunityModeration, SnapshotRow, SnapshotStatus } from './types.js';

/** `lift` clears the moderation a session carries (a removal, or a hide that outlived its snapshot). */
export const MODERATION_ACTIONS = ['hide', 'unhide', 'remove', 'lift'] as const;
export type ModerationAction = (typeof MODERATION_ACTIONS)[number];

export interface ModerationAuditRow {
  id: number;
  admin_id: string;
  action: ModerationAction;
  snapshot_id: number;
  session_id: number | null;
  snapshot_title: string | null;
  reason: string;
  created_at: Date;
}

/** An audit entry with the admin's email as it is now (null once the account is gone). */
export type ModerationAuditEntry = ModerationAuditRow & { admin_email: string | null };

/** A snapshot as the moderation page lists it, with its creator. */
export type ModeratedSnapshotRow = SnapshotRow & { creator_email: string | null; creator_first_name: string | null };

/** Sets or clears the hidden flag; undefined when there is no such snapshot. */
export async function setSnapshotHidden(trx: Knex.Transaction, id: number, hidden: boolean): Promise<SnapshotRow | undefined> {
  const [row] = await trx<SnapshotRow>('community_snapshots')
    .where({ id })
    .update({ is_hidden: hidden, hidden_at: hidden ? trx.raw('coalesce(hidden_at, now())') : null, updated_at: trx.fn.now() } as Record<string, unknown>)
    .returning('*');
  return row;
}

/**
 * Sets (or, with null, clears) the moderation the session carries, in the caller's transaction with
 * the session locked. Not a user edit: the version and `updated_at` stay, as for a worker's write.
 */
export async function setSessionModeration(trx: Knex.Transaction, sessionId: number, moderation: { status: CommunityModeration; reason: string } | null): Promise<void> {
  await trx('sessions')
    .where({ id: sessionId })
    .update({
      community_moderation: moderation?.status ?? null,
      community_moderation_reason: moderation?.reason ?? null,
      community_moderated_at: moderation ? trx.fn.now() : null,
    });
}

/** The snapshot of the session's latest hide or removal (what a lift undoes); undefined when it has none. */
export async function latestModeratedSnapshot(trx: Knex.Transaction, sessionId: number): Promise<number | undefined> {
  const row = (await trx('moderation_audit')
    .where({ session_id: sessionId })
    .whereIn('action', ['hide', 'remove'])
    .orderBy('id', 'desc')
    .first('snapshot_id')) as { snapshot_id: number } | undefined;
  return row?.snapshot_id;
}

/** Deletes one snapshot row by id (its media rows cascade); true when it existed. */
export async function deleteSnapshotById(trx: Knex.Transaction, id: number): Promise<boolean> {
  return (await trx('community_snapshots').where({ id }).del()) > 0;
}

/** Records one moderation action (in the caller's transaction); returns its id. */
export async function insertModerationAudit(
  trx: Knex.Transaction,
  entry: Pick<ModerationAuditRow, 'admin_id' | 'action' | 'snapshot_id' | 'session_id' | 'snapshot_title' | 'reason'>,
): Promise<number> {
  const [row] = await trx('moderation_audit').insert(entry).returning('id');
  return Number((row as { id: number | string }).id);
}

/** A page of the audit, newest first, with the total. */
export async function listModerationAudit(knex: Knex, page: { limit: number; offset: number }): Promise<{ rows: ModerationAuditEntry[]; total: number }> {
  const [rows, count] = await Promise.all([
    knex('moderation_audit as a')
      .leftJoin('users as u', 'u.id', 'a.admin_id')
      .select('a.*', 'u.email as admin_email')
      .orderBy([
        { column: 'a.created_at', order: 'desc' },
        { column: 'a.id', order: 'desc' },
      ])
      .limit(page.limit)
      .offset(page.offset),
    knex('moderation_audit').count<{ count: string }[]>({ count: '*' }).first(),
  ]);
  return {
    rows: (rows as (ModerationAuditEntry & { id: number | string })[]).map((r) => ({ ...r, id: Number(r.id) })),
    total: Number(count?.count ?? 0),
  };
}

/** Snapshots of every status for the moderation page, newest first, optionally by status and hidden flag. */
export async function listSnapshotsForModeration(
  knex: Knex,
  filter: { status?: SnapshotStatus; hidden?: boolean; limit: number; offset: number },
): Promise<{ rows: ModeratedSnapshotRow[]; total: number }> {
  const base = knex('community_snapshots as s');
  if (filter.status) base.where('s.status', filter.status);
  if (filter.hidden !== undefined) base.where('s.is_hidden', filter.hidden);
  const [rows, count] = await Promise.all([
    base
      .clone()
      .leftJoin('users as u', 'u.id', 's.user_id')
      .select('s.*', 'u.email as creator_email', 'u.first_name as creator_first_name')
      .orderBy('s.id', 'desc')
      .limit(filter.limit)
      .offset(filter.offset),
    base.clone().count<{ count: string }[]>({ count: '*' }).first(),
  ]);
  return { rows: rows as ModeratedSnapshotRow[], total: Number(count?.count ?? 0) };
}
