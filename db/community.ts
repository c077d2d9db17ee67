import { boundedCount, boundedCountQuery } from './counts.js';
import type { Knex } from './knex.js';
import type { SnapshotMediaRow, SnapshotRow } from './types.js';

/**
 * The hot score of docs/api.md §7, `(likes + 1) / (age_hours + 2)^1.5`, age from `ready_at` (never below
 * zero, so a clock ahead of the database cannot raise a negative to a fractional power). In double
 * precision: `numeric`'s power() is as approximate (it keeps 16 significant digits) and about 35
 * times slower per row, which was most of a `hot` page's time on any feed (1,000 rows scored twice).
 */
const hotScore = (alias: string): string =>
  `((${alias}.like_count + 1) / power(greatest(date_part('epoch', now() - ${alias}.ready_at), 0) / 3600 + 2, 1.5))`;

/**
 * The feed's orders, each a list of keys read newest/largest first and ended by `s.id DESC` for a
 * stable page. `new` and `top` each have indexes that read ready snapshots in exactly this order
 * (community_feed_new, community_feed_likes, and their `_filters` twins, which carry the columns
 * the filters test); `hot` depends on now(), which no index can hold, so its page is ordered over
 * the candidates `hotCandidates` bounds. A new order is one entry here.
 */
const FEED_ORDERS = {
  new: ['s.ready_at'],
  top: ['s.like_count', 's.ready_at'],
  hot: [hotScore('s'), 's.ready_at'],
} as const satisfies Record<string, readonly string[]>;

export type CommunitySort = keyof typeof FEED_ORDERS;

/**
 * The reference's `contentType` values and whether each holds snapshots: `all` and `sessions` are the
 * feed, which has sessions only, so each media-only value is an empty page rather than an error.
 */
export const FEED_CONTENT_TYPES = { all: true, sessions: true, captions: false, babecuts: false, hypnococks: false, betacensors: false } as const;
export type CommunityContentType = keyof typeof FEED_CONTENT_TYPES;
export const COMMUNITY_CONTENT_TYPES = Object.keys(FEED_CONTENT_TYPES) as CommunityContentType[];

/**
 * How many of the newest matching snapshots `hot` always ranks. The window does not limit what can
 * reach a page (see `hotCandidates`); it sets how high the like count an older snapshot needs is.
 */
const HOT_WINDOW = 1000;

/** The feed's `total` is exact up to this many matching snapshots and the planner's estimate above it. */
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

/** The values a filter looks up before it matches snapshots: creators by name, subreddit names by substring. */
type LookupName = 'creators' | 'searchCreators' | 'subredditNames';
/** The most values a lookup is written out with; a pattern matching more (a letter against every user) stays a sub-select. */
const LOOKUP_VALUES_MAX = 10_000;

/**
 * The lookups the filter makes, as the statements that list their values. Creators are matched
 * through users_full_name_trgm (a substring of either name is a substring of the full name); the
 * subreddit names are the distinct names snapshots were stored with (community_subreddit_names).
 */
function filterLookups(filter: CommunityFilter): Partial<Record<LookupName, { sql: string; bindings: string[] }>> {
  const creatorsNamed = (pattern: string, fullName: boolean) => ({
    sql: `SELECT id FROM users WHERE user_full_name(first_name, last_name) ILIKE ?${fullName ? '' : ' AND (first_name ILIKE ? OR last_name ILIKE ?)'}`,
    bindings: fullName ? [pattern] : [pattern, pattern, pattern],
  });
  return {
    ...(filter.creator ? { creators: creatorsNamed(`%${escapeLike(filter.creator)}%`, false) } : {}),
    ...(filter.search ? { searchCreators: creatorsNamed(`%${escapeLike(filter.search)}%`, true) } : {}),
    // Names hold no whitespace (the reference matched the names joined by spaces, where a pattern
    // with one could only match across two names): such a pattern matches nothing, and looks up nothing.
    ...(filter.subreddit && !/\s/.test(filter.subreddit)
      ? { subredditNames: { sql: 'SELECT name FROM community_subreddit_names WHERE name ILIKE ?', bindings: [`%${escapeLike(filter.subreddit)}%`] } }
      : {}),
  };
}

/**
 * The filter's lookups, run first in one statement, so that the page and the count are planned
 * with their values: as a sub-select, a lookup's values are unknown when the statement is planned
 * and the planner guessed a fixed fraction, so it could not tell a subreddit matching 11 % of the
 * feed (walk the order's index for a page) from one matching a handful (read those few and sort).
 */
async function resolveLookups(knex: Knex, filter: CommunityFilter): Promise<Partial<Record<LookupName, string[]>>> {
  const lookups = Object.entries(filterLookups(filter));
  if (!lookups.length) return {};
  const columns = lookups.map(([name, { sql }]) => `ARRAY(${sql} LIMIT ${LOOKUP_VALUES_MAX + 1}) AS "${name}"`);
  const { rows } = await knex.raw<{ rows: Record<LookupName, string[]>[] }>(`SELECT ${columns.join(', ')}`, lookups.flatMap(([, l]) => l.bindings));
  return Object.fromEntries(Object.entries(rows[0]!).filter(([, values]) => values.length <= LOOKUP_VALUES_MAX));
}

/**
 * The feed's two queries, built and not run, so a test can EXPLAIN exactly what the feed runs:
 * `page`, one page of ready snapshots with their creators' first names; `count`, how many match, up
 * to FEED_EXACT_TOTAL + 1 (`matching`: the rows it counts). Each lookup is a sub-select (an InitPlan,
 * run once), unless `known` gives its values ({@link resolveLookups}).
 */
export function communityQueries(knex: Knex, filter: CommunityFilter, known: Partial<Record<LookupName, string[]>> = {}) {
  const lookups = filterLookups(filter);
  const valuesOf = (name: LookupName): Knex.Raw => {
    const values = known[name];
    if (values) return knex.raw('?::text[]', [values]);
    const { sql, bindings } = lookups[name]!;
    return knex.raw(`ARRAY(${sql})`, bindings);
  };
  const base = knex('community_snapshots as s').where('s.status', 'ready');
  if (!filter.includeHidden) base.andWhereRaw('NOT s.is_hidden');
  if (filter.creator) base.andWhereRaw('s.user_id = ANY(?)', [valuesOf('creators')]);
  if (filter.creatorId) base.andWhere('s.user_id', filter.creatorId);
  if (filter.categoryId !== undefined) base.andWhere('s.category_id', filter.categoryId);
  // An unknown slug is NULL: it matches nothing, like an unknown id.
  if (filter.categorySlug !== undefined) base.andWhereRaw('s.category_id = (SELECT id FROM categories WHERE slug = ?)', [filter.categorySlug]);
  if (filter.search) {
    const pattern = `%${escapeLike(filter.search)}%`;
    // Few matches: a BitmapOr of title trigrams and the creators' snapshots. Many: a walk.
    base.andWhere((w) => w.whereILike('s.title', pattern).orWhereRaw('s.user_id = ANY(?)', [valuesOf('searchCreators')]));
  }
  // The distinct names the pattern matches (every name a snapshot was stored with: a trigger keeps
  // them, see its migration), then the snapshots holding any of them: exact, nothing rechecked per row.
  if (filter.subreddit) {
    if (lookups.subredditNames) base.andWhereRaw('s.subreddits && ?', [valuesOf('subredditNames')]);
    else base.andWhereRaw('false');
  }
  const order = [...FEED_ORDERS[filter.sort], 's.id'].map((key) => `${key} DESC`).join(', ');
  // The page's ids, cut from keys alone (for hot, ranked among its candidates), then only those rows
  // read whole. For new and top with a filter matching many, the cut is the first matching entries
  // of the order's `_filters` index: an index-only walk that stops at the page (see its migration).
  const ranked = filter.sort === 'hot' ? hotCandidates(knex, base, filter.offset + filter.limit) : base.clone();
  const cut = knex('community_snapshots as s').whereIn('s.id', ranked.select('s.id').orderByRaw(order).limit(filter.limit).offset(filter.offset)).select('s.*');
  // The page is ordered and cut among snapshots alone, then joined to its creators and categories:
  // joined first, the planner would read every user (and category) for the rows it then sorts.
  const page = knex
    .from(cut.as('s'))
    .join('users as u', 'u.id', 's.user_id')
    .join('categories as c', 'c.id', 's.category_id')
    .select('s.*', 'u.first_name as creator_first_name', 'c.slug as category_slug', likedBy(knex, filter.viewerId))
    .orderByRaw(order);
  // Counted without the joins (every snapshot has exactly one creator and category) and in the
  // order of `new`, whatever the sort: a filter matching much of the feed is then counted by an
  // index-only walk that stops after FEED_EXACT_TOTAL + 1 rows, one matching little through its own
  // index; unordered, the planner counted a broad filter by reading the table in physical order.
  const matching = base.clone().orderByRaw(`${FEED_ORDERS.new[0]} DESC, s.id DESC`);
  return { page, matching, count: boundedCountQuery(knex, matching, FEED_EXACT_TOTAL) };
}

/**
 * The snapshots that can be on the first `rank` places of the hot order, as rows `s` of the keys that
 * order reads (id, ready_at, like_count) for the page query to rank: exact, and read through indexes.
 * Without a filter, those keys and is_hidden are all in community_feed_new and community_feed_likes
 * (INCLUDE), so ranking is an index-only scan: the heap is read for the page's rows only, not for
 * the 1,000 candidates, which on a large feed lie on as many pages (see the migration cover_hot_feed).
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
  const keys = ['s.id', 's.ready_at', 's.like_count'];
  const recent = base.clone().select(keys).orderByRaw('s.ready_at DESC, s.id DESC').limit(Math.max(HOT_WINDOW, rank));
  const older = base
    .clone()
    .select(keys)
    .whereRaw('(s.ready_at, s.id) < (SELECT ready_at, id FROM hot_edge)')
    .andWhereRaw('s.like_count >= (SELECT bound FROM hot_bound)');
  return knex
    .with('hot_recent', recent)
    .with('hot_edge', knex.raw('SELECT ready_at, id FROM hot_recent ORDER BY ready_at, id LIMIT 1'))
    .with(
      'hot_bound',
      knex.raw(
        // An integer, like like_count, so that "like_count >= bound" is a range of community_feed_likes
        // (compared as a float, each row's count would be cast and read by a filter: the bench's
        // year of snapshots read 99,000 rows through community_feed_new to keep none). Capped at the
        // largest integer: a bound above every possible count admits nothing either way.
        `SELECT least(floor(min(best.score) * power(greatest(date_part('epoch', now() - e.ready_at), 0) / 3600 + 2, 1.5) * 0.999999) - 1, 2147483647)::int AS bound
           FROM (SELECT ${hotScore('r')} AS score FROM hot_recent r ORDER BY score DESC LIMIT ?) best, hot_edge e
          GROUP BY e.ready_at`,
        [rank],
      ),
    )
    .with('hot_older', older)
    .from(knex.raw('(SELECT * FROM hot_recent UNION ALL SELECT * FROM hot_older) AS s'));
}

/**
 * Ready snapshots for the community feed, with their creators' first names and categories' slugs:
 * the filter's lookups (when it has any), then the page and the bounded count side by side.
 */
export async function listCommunity(knex: Knex, filter: CommunityFilter): Promise<{ rows: CommunityRow[]; total: number }> {
  if (filter.contentType && !FEED_CONTENT_TYPES[filter.contentType]) return { rows: [], total: 0 };
  const { page, matching } = communityQueries(knex, filter, await resolveLookups(knex, filter));
  // An estimate is kept under what the total depends on: not the sort, the page or the viewer.
  const kept = JSON.stringify({ ...filter, sort: undefined, limit: undefined, offset: undefined, viewerId: undefined });
  const [rows, total] = await Promise.all([page, boundedCount(knex, matching, FEED_EXACT_TOTAL, `feed ${kept}`)]);
  return { rows: rows as CommunityRow[], total: total.count };
}

export async function findReadySnapshot(knex: Knex, id: number, viewerId?: string): Promise<CommunityRow | undefined> {
  return knex('community_snapshots as s')
    .join('users as u', 'u.id', 's.user_id')
    .join('categories as c', 'c.id', 's.category_id')
    .where({ 's.id': id, 's.status': 'ready' })
    .first('s.*', 'u.first_name as creator_first_name', 'c.slug as category_slug', likedBy(knex, viewerId));
}

export async function listSnapshotMedia(knex: Knex, snapshotId: number): Promise<SnapshotMediaRow[]> {
  return knex<SnapshotMediaRow>('community_snapshot_media').where({ snapshot_id: snapshotId }).orderBy('order');
}
