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
 * whole count (see {@link estimatedCount}, and its `planned`).
 */
export async function boundedCount(knex: Knex, rows: Knex.QueryBuilder, exactUpTo: number, planned?: () => Promise<{ rows: Knex.QueryBuilder }>): Promise<BoundedCount> {
  const counted = Number((await boundedCountQuery(knex, rows, exactUpTo))?.count ?? 0);
  if (counted <= exactUpTo) return { count: counted, exact: true };
  return { count: await estimatedCount(knex, rows, exactUpTo, planned), exact: false };
}

/** How long an estimate is reused. PostgreSQL's own moves only with its statistics (ANALYZE, a table's growth in pages). */
export const ESTIMATE_REUSE_MS = 60_000;
/** Estimates kept per database handle, the oldest dropped first: one per distinct filter asked for. */
const ESTIMATES_KEPT = 1_000;
const estimates = new WeakMap<Knex, Map<string, { count: number; until: number }>>();

/**
 * The planner's estimate of the query's row count (an EXPLAIN, which reads statistics rather than
 * rows), for a query known to have more than `exactUpTo` rows: never less than `exactUpTo + 1`.
 * The same query's estimate is reused for {@link ESTIMATE_REUSE_MS}: on a large feed each request
 * would otherwise spend a round trip and a plan on a figure that changes only with the statistics.
 * `planned`, when given, builds the same rows in the form the planner is asked about (values it
 * could not know when planning `rows` written out; wrapped, as a query builder awaited would run);
 * it runs only when no estimate is kept.
 */
export async function estimatedCount(knex: Knex, rows: Knex.QueryBuilder, exactUpTo: number, planned?: () => Promise<{ rows: Knex.QueryBuilder }>): Promise<number> {
  const asOne = (q: Knex.QueryBuilder) => q.clone().clearSelect().clearOrder().select(knex.raw('1')).toSQL();
  const asked = asOne(rows);
  let kept = estimates.get(knex);
  if (!kept) estimates.set(knex, (kept = new Map()));
  const key = `${exactUpTo} ${asked.sql} ${JSON.stringify(asked.bindings)}`;
  const now = Date.now();
  const known = kept.get(key);
  if (known && known.until > now) return known.count;
  const { sql, bindings } = planned ? asOne((await planned()).rows) : asked;
  const { rows: plan } = await knex.raw<{ rows: { 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] }[] }>(`EXPLAIN (FORMAT JSON) ${sql}`, bindings);
  const count = Math.max(exactUpTo + 1, Math.round(plan[0]?.['QUERY PLAN'][0].Plan['Plan Rows'] ?? 0));
  kept.delete(key);
  kept.set(key, { count, until: now + ESTIMATE_REUSE_MS });
  if (kept.size > ESTIMATES_KEPT) kept.delete(kept.keys().next().value!);
  return count;
}
