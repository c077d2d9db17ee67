import type { Knex } from './knex.js';
import type { SnapshotMediaRow, SnapshotRow } from './types.js';

export interface CommunityFilter {
  sort: 'new' | 'top';
  search?: string;
  subreddit?: string;
  creatorId?: string;
  categoryId?: number;
  limit: number;
  offset: number;
}

export type CommunityRow = SnapshotRow & { creator_first_name: string | null };

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** Ready snapshots for the community feed, with their creators' first names. */
export async function listCommunity(knex: Knex, filter: CommunityFilter): Promise<{ rows: CommunityRow[]; total: number }> {
  const base = knex('community_snapshots as s').join('users as u', 'u.id', 's.user_id').where('s.status', 'ready');
  if (filter.search) base.andWhereILike('s.title', `%${escapeLike(filter.search)}%`);
  if (filter.subreddit) base.andWhereRaw('? = ANY(s.subreddits)', [filter.subreddit]);
  if (filter.creatorId) base.andWhere('s.user_id', filter.creatorId);
  if (filter.categoryId !== undefined) base.andWhere('s.category_id', filter.categoryId);
  // "top" has no votes to rank by yet: the richest snapshots (most media) first.
  const order =
    filter.sort === 'top'
      ? [{ column: 's.media_count', order: 'desc' as const }, { column: 's.ready_at', order: 'desc' as const }]
      : [{ column: 's.ready_at', order: 'desc' as const }];
  const [rows, count] = await Promise.all([
    base
      .clone()
      .select('s.*', 'u.first_name as creator_first_name')
      .orderBy([...order, { column: 's.id', order: 'desc' }])
      .limit(filter.limit)
      .offset(filter.offset),
    base.clone().count<{ count: number }[]>({ count: '*' }).first(),
  ]);
  return { rows: rows as CommunityRow[], total: Number(count?.count ?? 0) };
}

export async function findReadySnapshot(knex: Knex, id: number): Promise<CommunityRow | undefined> {
  return knex('community_snapshots as s')
    .join('users as u', 'u.id', 's.user_id')
    .where({ 's.id': id, 's.status': 'ready' })
    .first('s.*', 'u.first_name as creator_first_name');
}

export async function listSnapshotMedia(knex: Knex, snapshotId: number): Promise<SnapshotMediaRow[]> {
  return knex<SnapshotMediaRow>('community_snapshot_media').where({ snapshot_id: snapshotId }).orderBy('order');
}
