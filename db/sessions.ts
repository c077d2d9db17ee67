import { prepared, type Knex } from './knex.js';
import type { SessionMediaRow, SessionRow, SnapshotRow } from './types.js';

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

/**
 * Locks the session row for the rest of the transaction and reads its live snapshot in the same
 * round trip (every PATCH needs both).
 */
export async function lockSession(
  trx: Knex.Transaction,
  id: number,
): Promise<{ session: SessionRow; snapshot: SnapshotRef | null } | undefined> {
  const row = await trx('sessions as s')
    .leftJoin('community_snapshots as cs', 'cs.session_id', 's.id')
    .where('s.id', id)
    .forUpdate('s')
    .first('s.*', 'cs.id as snapshot_id', 'cs.status as snapshot_status')
    .options(prepared('session-lock'));
  if (!row) return undefined;
  const { snapshot_id: snapshotId, snapshot_status: status, ...session } = row as SessionRow & {
    snapshot_id: number | null;
    snapshot_status: SnapshotRow['status'] | null;
  };
  return { session, snapshot: snapshotId === null || status === null ? null : { id: snapshotId, status } };
}

export async function findSession(knex: Knex, id: number): Promise<SessionRow | undefined> {
  return knex<SessionRow>('sessions').where({ id }).first();
}

/**
 * Applies the changes, bumps the version and moves `updated_at` forward (strictly: two changes in
 * the same millisecond still give distinct, increasing timestamps).
 */
export async function updateSession(trx: Knex.Transaction, id: number, changes: SessionChanges): Promise<SessionRow> {
  const [row] = await trx<SessionRow>('sessions')
    .where({ id })
    .update({
      ...changes,
      version: trx.raw('version + 1'),
      updated_at: trx.raw("greatest(now(), updated_at + interval '1 millisecond')"),
    } as Record<string, unknown>)
    .returning('*')
    // The SQL depends only on which columns change, in this order.
    .options(prepared(`session-update:${Object.keys(changes).join(',')}`));
  return row!;
}

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
