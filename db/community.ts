import { boundedCount, boundedCountQuery } from './counts.js';
import type { Knex } from './knex.js';
import type { SnapshotMediaRow, SnapshotRow } from './types.js';

/**
 * The hot score of DESIGN §4, `(likes + 1) / (age_hours + 2)^1.5`, age from `ready_at` (never below
 * zero, so a clock ahead of the database cannot raise a negative to a fractional power).
 */
const hotScore = (alias: string): string =>
  `((${alias}.like_count + 1) / power(greatest(extract(epoch from now() - ${alias}.ready_at), 0) / 3600 + 2, 1.5))`;

/**
 * The feed's orders, each a list of keys read newest/largest first and ended by `s.id DESC` for a
 * stable page. `new` and `top` each have an index that reads ready snapshots in exactly this order
 * (community_feed_new, community_feed_likes); `hot` depends on now(), which no index can hold, so
 * its page is ordered over the candidates `hotCandidates` bounds. A new order is one entry here.
 */
const FEED_ORDERS = {
  new: ['s.ready_at'],
  top: ['s.like_count', 's.ready_at'],
  hot: [hotScore('s'), 's.ready_at'],
} as const satisfies Record<string, readonly string[]>;

export type CommunitySort = keyof typeof FEED_ORDERS;

/**
 * The reference's `contentType` values and whether each holds snapshots: the feed has sessions only,
 * so a media-only value is an empty page rather than an error.
 */
export const FEED_CONTENT_TYPES = { all: true, sessions: true, images: false, videos: false, gifs: false, media: false } as const;
export type CommunityContentType = keyof typeof FEED_CONTENT_TYPES;
export const COMMUNITY_CONTENT_TYPES = Object.keys(FEED_CONTENT_TYPES) as CommunityContentType[];

/**
 * How many of the newest matching snapshots `hot` always ranks. The window does not limit what can
 * reach a page (see `hotCandidates`); it sets how high the like count an older snapshot needs is.
 */
const HOT_WINDOW = 1000;

/**
 * The feed's `total` is exact up to this many matching snapshots and the planner's estimate above
 * it, so a feed of a year's snapshots is not counted row by row on every page.
 */
export const FEED_EXACT_TOTAL = 1000;

/** Every value `sort` may take, for the route's validation and the OpenAPI enum. */
export const COMMUNITY_SORTS = Object.keys(FEED_ORDERS) as CommunitySort[];

export interface CommunityFilter {
  sort: CommunitySort;
  /** Absent is `all`. */
  contentType?: CommunityContentType;
  /** A substring of the title or of the creator's name. */
  search?: string;
  /** A substring of any of the snapshot's subreddit names. */
  subreddit?: string;
  /** A substring of the creator's first or last name. */
  creator?: string;
  creatorId?: string;
  categoryId?: number;
  categorySlug?: string;
  /** The logged-in user, whose likes `is_liked_by_user` reports (false for everyone else). */
  viewerId?: string;
  /** An admin's view: hidden snapshots too (flagged by `is_hidden`). */
  includeHidden?: boolean;
  limit: number;
  offset: number;
}

export type CommunityRow = SnapshotRow & { creator_first_name: string | null; category_slug: string; is_liked_by_user: boolean };

function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** `is_liked_by_user` of snapshot `s`: the viewer's like, by community_likes' primary key; false without a viewer. */
function likedBy(knex: Knex, viewerId: string | undefined): Knex.Raw {
  return viewerId
    ? knex.raw('EXISTS (SELECT 1 FROM community_likes l WHERE l.user_id = ? AND l.snapshot_id = s.id) AS is_liked_by_user', [viewerId])
    : knex.raw('false AS is_liked_by_user');
}

/**
 * The feed's two queries, built and not run: one page of ready snapshots with their creators' first
 * names, and the count of all that match. Exported so a test can EXPLAIN exactly what the feed runs.
 */
export function communityQueries(knex: Knex, filter: CommunityFilter) {
  const base = knex('community_snapshots as s').where('s.status', 'ready');
  // Written as the predicate of community_feed_visible, so the plain feed's count is that index's.
  if (!filter.includeHidden) base.andWhereRaw('NOT s.is_hidden');
  // Creators are matched first, once (ARRAY(...) is an InitPlan), so that "user_id = ANY(...)" is an
  // index condition on community_snapshots_user rather than a per-row subquery. Both forms are found
  // through users_full_name_trgm: a substring of either name is a substring of the full name.
  const creatorsNamed = (pattern: string, fullName: boolean) =>
    knex.raw(
      `ARRAY(SELECT id FROM users WHERE user_full_name(first_name, last_name) ILIKE ?${fullName ? '' : ' AND (first_name ILIKE ? OR last_name ILIKE ?)'})`,
      fullName ? [pattern] : [pattern, pattern, pattern],
    );
  if (filter.search) {
    const pattern = `%${escapeLike(filter.search)}%`;
    // Either side is an index (title trigrams, creators' snapshots): a BitmapOr of the two.
    base.andWhere((w) => w.whereILike('s.title', pattern).orWhereRaw('s.user_id = ANY(?)', [creatorsNamed(pattern, true)]));
  }
  // community_subreddits_text is the expression community_feed_subreddits_trgm indexes.
  if (filter.subreddit) {
    // Names are joined by spaces, and no name holds one: a pattern with a space would match across two.
    if (/\s/.test(filter.subreddit)) base.andWhereRaw('false');
    else base.andWhereRaw('community_subreddits_text(s.subreddits) ILIKE ?', [`%${escapeLike(filter.subreddit)}%`]);
  }
  if (filter.creator) base.andWhereRaw('s.user_id = ANY(?)', [creatorsNamed(`%${escapeLike(filter.creator)}%`, false)]);
  if (filter.creatorId) base.andWhere('s.user_id', filter.creatorId);
  if (filter.categoryId !== undefined) base.andWhere('s.category_id', filter.categoryId);
  // An unknown slug is NULL: it matches nothing, like an unknown id.
  if (filter.categorySlug !== undefined) base.andWhereRaw('s.category_id = (SELECT id FROM categories WHERE slug = ?)', [filter.categorySlug]);
  const order = [...FEED_ORDERS[filter.sort], 's.id'].map((key) => `${key} DESC`).join(', ');
  // The page is ordered and cut among snapshots alone, then joined to its creators and categories:
  // joined first, the planner would read every user (and category) for the rows it then sorts,
  // which grows with the data (a `hot` window, or a broad subreddit filter).
  const feedRows = (rows: Knex.QueryBuilder) =>
    knex
      .from(rows.select('s.*').orderByRaw(order).limit(filter.limit).offset(filter.offset).as('s'))
      .join('users as u', 'u.id', 's.user_id')
      .join('categories as c', 'c.id', 's.category_id')
      .select('s.*', 'u.first_name as creator_first_name', 'c.slug as category_slug', likedBy(knex, filter.viewerId))
      .orderByRaw(order);
  return {
    page: filter.sort === 'hot' ? feedRows(hotCandidates(knex, base, filter.offset + filter.limit)) : feedRows(base.clone()),
    // No join: user_id is NOT NULL and references users, so every snapshot has exactly one creator,
    // and without the join the count of a whole feed is an index-only scan of a feed index, which
    // stops after FEED_EXACT_TOTAL + 1 rows.
    count: boundedCountQuery(knex, base, FEED_EXACT_TOTAL),
    /** The matching snapshots, unordered: what the count counts (and what an estimate is asked of). */
    matching: base,
  };
}

/**
 * The snapshots that can be on the first `rank` places of the hot order, as `community_snapshots as s`
 * for the page query to order: exact, and read through indexes.
 *
 * The newest `max(HOT_WINDOW, rank)` matching snapshots (community_feed_new) are all candidates. Let
 * θ be the `rank`-th best score among them and A the age of the oldest of them. Any older snapshot
 * is at least A old, so its score is at most (likes + 1) / (A + 2)^1.5; it can only reach the first
 * `rank` places if that is at least θ, i.e. likes ≥ θ·(A + 2)^1.5 − 1 (ties go to the newer
 * snapshot, so "equal" could not, but the bound is kept loose against rounding). Those older
 * candidates come from community_feed_likes, a range scan from the most liked down to that bound.
 * A lively feed makes the bound high and that scan short; a feed of old, equally liked snapshots
 * makes it long, which is the price of an exact order without a stored score (a precomputed score
 * would need rewriting every row as time passes, because the power-law decay does not factor into
 * a time-independent part the way a log-plus-linear score does).
 */
function hotCandidates(knex: Knex, base: Knex.QueryBuilder, rank: number): Knex.QueryBuilder {
  const recent = base
    .clone()
    .select('s.*')
    .orderBy([
      { column: 's.ready_at', order: 'desc' },
      { column: 's.id', order: 'desc' },
    ])
    .limit(Math.max(HOT_WINDOW, rank));
  const older = base
    .clone()
    .select('s.*')
    .whereRaw('(s.ready_at, s.id) < (SELECT ready_at, id FROM hot_edge)')
    .andWhereRaw('s.like_count >= (SELECT bound FROM hot_bound)');
  return knex
    .with('hot_recent', recent)
    .with('hot_edge', knex.raw('SELECT ready_at, id FROM hot_recent ORDER BY ready_at, id LIMIT 1'))
    .with(
      'hot_bound',
      knex.raw(
        `SELECT floor(min(best.score) * power(greatest(extract(epoch from now() - e.ready_at), 0) / 3600 + 2, 1.5) * 0.999999) - 1 AS bound
           FROM (SELECT ${hotScore('r')} AS score FROM hot_recent r ORDER BY score DESC LIMIT ?) best, hot_edge e
          GROUP BY e.ready_at`,
        [rank],
      ),
    )
    .with('hot_older', older)
    .from(knex.raw('(SELECT * FROM hot_recent UNION ALL SELECT * FROM hot_older) AS s'));
}

/** Ready snapshots for the community feed, with their creators' first names and categories' slugs. */
export async function listCommunity(knex: Knex, filter: CommunityFilter): Promise<{ rows: CommunityRow[]; total: number }> {
  if (filter.contentType && !FEED_CONTENT_TYPES[filter.contentType]) return { rows: [], total: 0 };
  const { page, matching } = communityQueries(knex, filter);
  const [rows, counted] = await Promise.all([page, boundedCount(knex, matching, FEED_EXACT_TOTAL)]);
  return { rows: rows as CommunityRow[], total: counted.count };
}

export async function findReadySnapshot(knex: Knex, id: number, viewerId?: string): Promise<CommunityRow | undefined> {
  return knex('community_snapshots as s')
    .join('users as u', 'u.id', 's.user_id')
    .join('categories as c', 'c.id', 's.category_id')
    .where({ 's.id': id, 's.status': 'ready' })
    .first(
      's.*',
      'u.first_name as creator_first_name',
      'c.slug as category_slug',
      likedBy(knex, viewerId),
    );
}

export async function listSnapshotMedia(knex: Knex, snapshotId: number): Promise<SnapshotMediaRow[]> {
  return knex<SnapshotMediaRow>('community_snapshot_media').where({ snapshot_id: snapshotId }).orderBy('order');
}
