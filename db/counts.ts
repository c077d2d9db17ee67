import type { Knex } from './knex.js';

/** A count that is exact up to a bound and the planner's estimate above it. */
export interface BoundedCount {
  count: number;
  exact: boolean;
}

/**
 * The query's rows counted, at most `exactUpTo + 1` of them: a count that reads no more rows
 * however large the table grows. Built and not run, so a test can EXPLAIN it.
 */
export function boundedCountQuery(knex: Knex, rows: Knex.QueryBuilder, exactUpTo: number) {
  const matching = rows.clone().clearSelect().clearOrder().select(knex.raw('1')).limit(exactUpTo + 1);
  return knex.from(matching.as('matching')).count<{ count: number }[]>({ count: '*' }).first();
}

/**
 * Counts the query's rows exactly up to `exactUpTo`; above it, the planner's estimate of the
 * whole count (see {@link estimatedCount}, and its `planned`). Rows counted above the bound are not
 * counted again while their estimate is kept ({@link keptEstimate}).
 */
export async function boundedCount(knex: Knex, rows: Knex.QueryBuilder, exactUpTo: number, planned?: PlannedRows): Promise<BoundedCount> {
  const kept = keptEstimate(knex, rows, exactUpTo);
  if (kept !== undefined) return { count: kept, exact: false };
  const counted = Number((await boundedCountQuery(knex, rows, exactUpTo))?.count ?? 0);
  if (counted <= exactUpTo) return { count: counted, exact: true };
  return { count: await estimatedCount(knex, rows, exactUpTo, planned), exact: false };
}

/**
 * The rows in the form the planner is asked about for an estimate (values it could not know when
 * planning the rows as they run, written out). Wrapped: a query builder awaited would run.
 */
export type PlannedRows = () => Promise<{ rows: Knex.QueryBuilder }>;

/** How long an estimate is reused. PostgreSQL's own moves only with its statistics (ANALYZE, a table's growth in pages). */
export const ESTIMATE_REUSE_MS = 60_000;
/** Estimates kept per database handle, the oldest dropped first: one per distinct filter asked for. */
const ESTIMATES_KEPT = 1_000;
const estimates = new WeakMap<Knex, Map<string, { count: number; until: number }>>();

/** The rows as the one-column statement an estimate is asked of, and kept under. */
function asEstimated(knex: Knex, rows: Knex.QueryBuilder): Knex.Sql {
  return rows.clone().clearSelect().clearOrder().select(knex.raw('1')).toSQL();
}

function estimateKey(exactUpTo: number, { sql, bindings }: Knex.Sql): string {
  return `${exactUpTo} ${sql} ${JSON.stringify(bindings)}`;
}

function keptUnder(knex: Knex, key: string): number | undefined {
  const known = estimates.get(knex)?.get(key);
  return known && known.until > Date.now() ? known.count : undefined;
}

/**
 * The estimate kept for these rows, if one is: they were counted above `exactUpTo` less than
 * {@link ESTIMATE_REUSE_MS} ago. Counting them again would only say so again, and for a filter
 * matching much of a large table that count is not cheap: it cannot stop after `exactUpTo + 1`
 * rows when an index bitmap of every match is built first (a subreddit matching 77,000 snapshots:
 * 46 ms). Rows that drop to `exactUpTo` or fewer meanwhile are counted exactly once it expires.
 */
export function keptEstimate(knex: Knex, rows: Knex.QueryBuilder, exactUpTo: number): number | undefined {
  return keptUnder(knex, estimateKey(exactUpTo, asEstimated(knex, rows)));
}

/**
 * The planner's estimate of the query's row count (an EXPLAIN, which reads statistics rather than
 * rows), for a query known to have more than `exactUpTo` rows: never less than `exactUpTo + 1`.
 * The same query's estimate is reused for {@link ESTIMATE_REUSE_MS}: on a large feed each request
 * would otherwise spend a round trip and a plan on a figure that changes only with the statistics.
 * `planned`, when given, builds the same rows as the planner is asked about them; it runs only
 * when no estimate is kept.
 */
export async function estimatedCount(knex: Knex, rows: Knex.QueryBuilder, exactUpTo: number, planned?: PlannedRows): Promise<number> {
  const asked = asEstimated(knex, rows);
  const key = estimateKey(exactUpTo, asked);
  const known = keptUnder(knex, key);
  if (known !== undefined) return known;
  const { sql, bindings } = planned ? asEstimated(knex, (await planned()).rows) : asked;
  const { rows: plan } = await knex.raw<{ rows: { 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] }[] }>(`EXPLAIN (FORMAT JSON) ${sql}`, bindings);
  const count = Math.max(exactUpTo + 1, Math.round(plan[0]?.['QUERY PLAN'][0].Plan['Plan Rows'] ?? 0));
  let kept = estimates.get(knex);
  if (!kept) estimates.set(knex, (kept = new Map()));
  kept.delete(key);
  kept.set(key, { count, until: Date.now() + ESTIMATE_REUSE_MS });
  if (kept.size > ESTIMATES_KEPT) kept.delete(kept.keys().next().value!);
  return count;
}
