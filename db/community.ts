import { boundedCount, boundedCountQuery, estimatedCount, keptEstimate } from './counts.js';
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
 * The reference's `contentType` values and whether each holds snapshots: `all` and `sessions` are the
 * feed, which has sessions only, so each of the reference's media-only values (smart-caption media
 * and its three media collections) is an empty page rather than an error.
 */
export const FEED_CONTENT_TYPES = { all: true, sessions: true, captions: false, babecuts: false, hypnococks: false, betacensors: false } as const;
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
 * How many of the feed's first rows (in its order) a page filtered by `search` or `subreddit` is
 * looked for among, once the filter is known to match more than FEED_EXACT_TOTAL snapshots. The walk
 * stops as soon as the page is full: a filter matching 10 % of the feed fills a first page after
 * about 200 rows, one matching 1 % after about 2,000. FEED_PROBE bounds what a sparser filter costs
 * before the index bitmap (every match, then sorted) takes over.
 */
const FEED_PROBE = 5000;

/** The values a filter looks up before it matches snapshots: creators by name, subreddit names by substring. */
type LookupName = 'creators' | 'searchCreators' | 'subredditNames';
export type FilterLookups = Partial<Record<LookupName, string[]>>;

/**
 * The most values a lookup is written out with for an estimate ({@link resolveLookups}); a pattern
 * matching more (a single letter against every user) is estimated as the planner guesses it.
 */
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
 * The filter's lookups run on their own, for an estimate of how many snapshots it matches. In the
 * feed's queries a lookup is an InitPlan, whose values the planner does not know when it plans: it
 * guessed a fixed fraction, so a subreddit matching 11,000 snapshots of a year's feed was estimated
 * at 1,001 (the least an estimate may say), and so was every broad one. Written out as values,
 * the planner estimates from the columns' statistics (`subreddits`' element frequencies, `user_id`'s
 * distinct values). A lookup finding more than LOOKUP_VALUES_MAX values is left as it is.
 */
export async function resolveLookups(knex: Knex, filter: CommunityFilter): Promise<FilterLookups> {
  const found = await Promise.all(
    Object.entries(filterLookups(filter)).map(async ([name, { sql, bindings }]) => {
      const { rows } = await knex.raw<{ rows: Record<string, string>[] }>(`${sql} LIMIT ?`, [...bindings, LOOKUP_VALUES_MAX + 1]);
      return rows.length > LOOKUP_VALUES_MAX ? [] : [[name, rows.map((r) => Object.values(r)[0]!)] as const];
    }),
  );
  return Object.fromEntries(found.flat());
}

/**
 * The feed's queries, built and not run, so a test can EXPLAIN exactly what the feed runs:
 * - `page`: one page of ready snapshots with their creators' first names, as the planner likes it;
 * - `count`: how many match, counted up to FEED_EXACT_TOTAL + 1;
 * - `matching`: the rows that count counts, unordered (what an estimate is asked of);
 * - with a substring filter (`search`, `subreddit`) and sort new or top, `narrowed`: the count of the
 *   first FEED_EXACT_TOTAL + 1 matches, with the page's ids when that is all of them; `pageOf(ids)`,
 *   those snapshots as page rows; and `probe`, the page among the first FEED_PROBE rows of the feed
 *   (see listCommunity for why).
 * Each lookup is an InitPlan of the query, unless `known` gives its values ({@link resolveLookups}).
 */
export function communityQueries(knex: Knex, filter: CommunityFilter, known: FilterLookups = {}) {
  const lookups = filterLookups(filter);
  // Matched first, once (ARRAY(...) is an InitPlan), so that "user_id = ANY(...)" is an index
  // condition on community_snapshots_user rather than a per-row subquery.
  const valuesOf = (name: LookupName): Knex.Raw => {
    const values = known[name];
    if (values) return knex.raw('?::text[]', [values]);
    const { sql, bindings } = lookups[name]!;
    return knex.raw(`ARRAY(${sql})`, bindings);
  };
  const feed = knex('community_snapshots as s').where('s.status', 'ready');
  // Written as the predicate of community_feed_visible, so the plain feed's count is that index's.
  if (!filter.includeHidden) feed.andWhereRaw('NOT s.is_hidden');
  if (filter.creator) feed.andWhereRaw('s.user_id = ANY(?)', [valuesOf('creators')]);
  if (filter.creatorId) feed.andWhere('s.user_id', filter.creatorId);
  if (filter.categoryId !== undefined) feed.andWhere('s.category_id', filter.categoryId);
  // An unknown slug is NULL: it matches nothing, like an unknown id.
  if (filter.categorySlug !== undefined) feed.andWhereRaw('s.category_id = (SELECT id FROM categories WHERE slug = ?)', [filter.categorySlug]);
  // The substring filters, answered through indexes: applied to `rows` (aliased `s`).
  const narrow = (rows: Knex.QueryBuilder): Knex.QueryBuilder => {
    if (filter.search) {
      const pattern = `%${escapeLike(filter.search)}%`;
      // Either side is an index (title trigrams, creators' snapshots): a BitmapOr of the two.
      rows.andWhere((w) => w.whereILike('s.title', pattern).orWhereRaw('s.user_id = ANY(?)', [valuesOf('searchCreators')]));
    }
    // The distinct names the pattern matches, then the snapshots holding any of them
    // (community_feed_subreddits, GIN on the array): exact, so nothing is rechecked per row. The
    // names table holds every name a snapshot was stored with (a trigger keeps it; see its migration).
    if (filter.subreddit) {
      if (lookups.subredditNames) rows.andWhereRaw('s.subreddits && ?', [valuesOf('subredditNames')]);
      else rows.andWhereRaw('false');
    }
    return rows;
  };
  const base = narrow(feed.clone());
  const order = [...FEED_ORDERS[filter.sort], 's.id'].map((key) => `${key} DESC`).join(', ');
  // The page is ordered and cut among snapshots alone, then joined to its creators and categories:
  // joined first, the planner would read every user (and category) for the rows it then sorts,
  // which grows with the data (a `hot` window, or a broad subreddit filter).
  const feedRows = (rows: Knex.QueryBuilder, cut = { limit: filter.limit, offset: filter.offset }) =>
    knex
      .from(rows.select('s.*').orderByRaw(order).limit(cut.limit).offset(cut.offset).as('s'))
      .join('users as u', 'u.id', 's.user_id')
      .join('categories as c', 'c.id', 's.category_id')
      .select('s.*', 'u.first_name as creator_first_name', 'c.slug as category_slug', likedBy(knex, filter.viewerId))
      .orderByRaw(order);
  const substring = filter.sort !== 'hot' && Boolean(filter.search || filter.subreddit);
  return {
    // hot: the page's ids ranked among the candidates' keys alone, then only those rows read whole.
    page:
      filter.sort === 'hot'
        ? feedRows(
            knex('community_snapshots as s').whereIn(
              's.id',
              hotCandidates(knex, base, filter.offset + filter.limit).select('s.id').orderByRaw(order).limit(filter.limit).offset(filter.offset),
            ),
            { limit: filter.limit, offset: 0 },
          )
        : feedRows(base.clone()),
    // No join: user_id is NOT NULL and references users, so every snapshot has exactly one creator,
    // and without the join the count of a whole feed is an index-only scan of a feed index, which
    // stops after FEED_EXACT_TOTAL + 1 rows.
    count: boundedCountQuery(knex, base, FEED_EXACT_TOTAL),
    matching: base,
    narrowed: substring
      ? knex
          .from(base.clone().select('s.id', 's.ready_at', 's.like_count').limit(FEED_EXACT_TOTAL + 1).as('s'))
          .first(
            knex.raw('count(*)::int AS matched'),
            knex.raw(`CASE WHEN count(*) <= ? THEN (array_agg(s.id ORDER BY ${order}))[?::int : ?::int] END AS page_ids`, [
              FEED_EXACT_TOTAL,
              filter.offset + 1,
              filter.offset + filter.limit,
            ]),
          )
      : undefined,
    // Rechecked against the feed (a snapshot hidden or removed since is left out); found by primary key.
    pageOf: (ids: number[]) => feedRows(feed.clone().whereRaw('s.id = ANY(?::int[])', [ids]), { limit: ids.length, offset: 0 }),
    // The inner LIMIT is not something the planner can move the filter below: the feed's index is
    // walked in order and the walk stops once the page is full, or after FEED_PROBE rows.
    probe: substring ? feedRows(narrow(knex.from(feed.clone().select('s.*').orderByRaw(order).limit(FEED_PROBE).as('s')))) : undefined,
  };
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
  const recent = base
    .clone()
    .select(keys)
    .orderBy([
      { column: 's.ready_at', order: 'desc' },
      { column: 's.id', order: 'desc' },
    ])
    .limit(Math.max(HOT_WINDOW, rank));
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
 * Ready snapshots for the community feed, with their creators' first names and categories' slugs.
 *
 * A substring filter (`search`, `subreddit`) is answered by an index bitmap of all its matches
 * (title trigrams; the snapshots holding one of the matching subreddit names), whose cost grows
 * with them, and the planner cannot tell a filter matching 1 % of the feed from one matching 10 %
 * (it guesses from trigram statistics, and knows nothing of the names an InitPlan finds). So with
 * sort new or top the feed first counts the matches up to FEED_EXACT_TOTAL + 1 (the count it owes
 * anyway); when that is all of them, the page is cut from those same rows, so no second scan. When
 * there are more, they are dense enough that walking the feed's index in order fills the page within
 * FEED_PROBE rows; the bitmap page is the fallback when it does not. A filter counted above the
 * bound is not counted again while its estimate is kept, so paging through a broad filter costs the
 * walk alone.
 */
export async function listCommunity(knex: Knex, filter: CommunityFilter): Promise<{ rows: CommunityRow[]; total: number }> {
  if (filter.contentType && !FEED_CONTENT_TYPES[filter.contentType]) return { rows: [], total: 0 };
  const queries = communityQueries(knex, filter);
  // An estimate is asked of the filter with its lookups' values written out (see resolveLookups).
  const planned = async () => ({ rows: communityQueries(knex, filter, await resolveLookups(knex, filter)).matching });
  if (queries.narrowed && queries.probe) {
    // Counted above the bound within the last minute: not counted again (see keptEstimate).
    const kept = keptEstimate(knex, queries.matching, FEED_EXACT_TOTAL);
    if (kept === undefined) {
      const narrowed = (await queries.narrowed) as { matched: number; page_ids: number[] | null };
      if (narrowed.matched <= FEED_EXACT_TOTAL) {
        const ids = narrowed.page_ids ?? [];
        return { rows: ids.length ? ((await queries.pageOf(ids)) as CommunityRow[]) : [], total: narrowed.matched };
      }
    }
    const [probed, total] = await Promise.all([queries.probe, kept ?? estimatedCount(knex, queries.matching, FEED_EXACT_TOTAL, planned)]);
    const rows = probed.length === filter.limit ? probed : await queries.page;
    return { rows: rows as CommunityRow[], total };
  }
  const [rows, counted] = await Promise.all([queries.page, boundedCount(knex, queries.matching, FEED_EXACT_TOTAL, planned)]);
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
