import type { Knex } from './knex.js';

/** A count that is exact up to a bound and the planner's estimate above it. */
export interface BoundedCount {
  count: number;
  exact: boolean;
}

/**
 * The query's rows counted, at most `exactUpTo + 1` of them: a count that reads no more rows
 * however large the table grows. An order given is kept (it can choose the index the rows are
 * counted through). Built and not run, so a test can EXPLAIN it.
 */
export function boundedCountQuery(knex: Knex, rows: Knex.QueryBuilder, exactUpTo: number) {
  const matching = rows.clone().clearSelect().select(knex.raw('1')).limit(exactUpTo + 1);
  return knex.from(matching.as('matching')).count<{ count: number }[]>({ count: '*' }).first();
}

/** How long an estimate is reused. PostgreSQL's own moves only with its statistics (ANALYZE, a table's growth in pages). */
export const ESTIMATE_REUSE_MS = 60_000;
/** Estimates kept per database handle, the oldest dropped first. */
const ESTIMATES_KEPT = 1_000;
const estimates = new WeakMap<Knex, Map<string, { count: number; until: number }>>();

/**
 * Counts the query's rows exactly up to `exactUpTo`; above it, the planner's estimate of the whole
 * count (an EXPLAIN, which reads statistics rather than rows), never less than `exactUpTo + 1`.
 *
 * `keep`: the name under which an estimate is reused for ESTIMATE_REUSE_MS; while it is, the rows
 * are not counted at all. This is the one shortcut the feed keeps, because the bench's scale part
 * needs it: on a year of snapshots, counting to 1,001 and asking for a plan on every page made the
 * plain feed's page 3.2 ms against 1.2 (serially, 100,000 snapshots), `subreddit, broad` 6.4 against
 * 2.3 and `search, common` 14 against 2.9; the first count of a broad subreddit builds a GIN bitmap
 * of every match (docs/performance.md §4: 46 ms a page for 77,000 matches, then 3 ms). Rows that
 * drop to `exactUpTo` or fewer meanwhile are counted exactly once the estimate expires.
 */
export async function boundedCount(knex: Knex, rows: Knex.QueryBuilder, exactUpTo: number, keep?: string): Promise<BoundedCount> {
  let kept = estimates.get(knex);
  const known = keep === undefined ? undefined : kept?.get(keep);
  if (known && known.until > Date.now()) return { count: known.count, exact: false };
  const counted = Number((await boundedCountQuery(knex, rows, exactUpTo))?.count ?? 0);
  if (counted <= exactUpTo) return { count: counted, exact: true };
  const { sql, bindings } = rows.clone().clearSelect().clearOrder().select(knex.raw('1')).toSQL();
  const { rows: plan } = await knex.raw<{ rows: { 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] }[] }>(`EXPLAIN (FORMAT JSON) ${sql}`, bindings);
  const count = Math.max(exactUpTo + 1, Math.round(plan[0]?.['QUERY PLAN'][0].Plan['Plan Rows'] ?? 0));
  if (keep !== undefined) {
    if (!kept) estimates.set(knex, (kept = new Map()));
    kept.delete(keep);
    kept.set(keep, { count, until: Date.now() + ESTIMATE_REUSE_MS });
    if (kept.size > ESTIMATES_KEPT) kept.delete(kept.keys().next().value!);
  }
  return { count, exact: false };
}
