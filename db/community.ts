import type { Knex } from './knex.js';
import type { SnapshotMediaRow, SnapshotRow } from './types.js';

/**
 * The feed's orders, each a list of columns read newest/largest first and ended by `s.id DESC` for a
 * stable page. Each has an index in 20261201000100_add_community_feed_indexes that reads ready
 * snapshots in exactly this order; a new order is one entry here (and one index there).
 */
const FEED_ORDERS = {
  new: ['s.ready_at'],
  // "top" has no votes to rank by yet: the richest snapshots (most media) first.
  top: ['s.media_count', 's.ready_at'],
} as const satisfies Record<string, readonly string[]>;

export type CommunitySort = keyof typeof FEED_ORDERS;

/** Every value `sort` may take, for the route's validation and the OpenAPI enum. */
export const COMMUNITY_SORTS = Object.keys(FEED_ORDERS) as CommunitySort[];

export interface CommunityFilter {
  sort: CommunitySort;
  search?: string;
  subreddit?: string;
  creatorId?: string;
  categoryId?: number;
  /** An admin's view: hidden snapshots too (flagged by `is_hidden`). */
  includeHidden?: boolean;
  limit: number;
  offset: number;
}

export type CommunityRow = SnapshotRow & { creator_first_name: string | null };

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * The feed's two queries, built and not run: one page of ready snapshots with their creators' first
 * names, and the count of all that match. Exported so a test can EXPLAIN exactly what the feed runs.
 */
export function communityQueries(knex: Knex, filter: CommunityFilter) {
  const base = knex('community_snapshots as s').where('s.status', 'ready');
  // Written as the predicate of community_feed_visible, so the plain feed's count is that index's.
  if (!filter.includeHidden) base.andWhereRaw('NOT s.is_hidden');
  if (filter.search) base.andWhereILike('s.title', `%${escapeLike(filter.search)}%`);
  // Containment rather than "= ANY": the GIN index on subreddits answers @>, not ANY.
  if (filter.subreddit) base.andWhereRaw('s.subreddits @> ARRAY[?]::text[]', [filter.subreddit]);
  if (filter.creatorId) base.andWhere('s.user_id', filter.creatorId);
  if (filter.categoryId !== undefined) base.andWhere('s.category_id', filter.categoryId);
  const order = [...FEED_ORDERS[filter.sort], 's.id'].map((column) => ({ column, order: 'desc' as const }));
  return {
    page: base
      .clone()
      .join('users as u', 'u.id', 's.user_id')
      .select('s.*', 'u.first_name as creator_first_name')
      .orderBy(order)
      .limit(filter.limit)
      .offset(filter.offset),
    // No join: user_id is NOT NULL and references users, so every snapshot has exactly one creator,
    // and without the join the count of a whole feed is an index-only scan of a feed index.
    count: base.clone().count<{ count: number }[]>({ count: '*' }).first(),
  };
}

/** Ready snapshots for the community feed, with their creators' first names. */
export async function listCommunity(knex: Knex, filter: CommunityFilter): Promise<{ rows: CommunityRow[]; total: number }> {
  const { page, count } = communityQueries(knex, filter);
  const [rows, counted] = await Promise.all([page, count]);
  return { rows: rows as CommunityRow[], total: Number(counted?.count ?? 0) };
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
