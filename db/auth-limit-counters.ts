import { RateLimiterPostgres } from 'rate-limiter-flexible';
import type { Knex } from './knex.js';

/**
 * The counters of the login and registration limits (server/auth-limits.ts; the API-wide limit
 * counts in Redis instead). Their table kept the name it was created with, `rate_limits`.
 */
const TABLE = 'rate_limits';

/**
 * A rate-limiter-flexible limiter whose counters live in PostgreSQL (`rate_limits`), shared by
 * every web process: each consume is one atomic upsert, so parallel requests cannot all pass a
 * limit one of them has spent. The table comes from a migration, and expired rows are deleted by
 * the maintenance queue ({@link deleteExpiredRateLimits}), not by a timer in each process.
 */
export function postgresRateLimiter(
  knex: Knex,
  options: { keyPrefix: string; points: number; durationSeconds: number; blockDurationSeconds?: number },
): RateLimiterPostgres {
  return new RateLimiterPostgres({
    storeClient: knex,
    storeType: 'knex',
    tableName: TABLE,
    tableCreated: true,
    clearExpiredByTimeout: false,
    keyPrefix: options.keyPrefix,
    points: options.points,
    duration: options.durationSeconds,
    ...(options.blockDurationSeconds ? { blockDuration: options.blockDurationSeconds } : {}),
  });
}

/** Removes up to `limit` counters whose window has closed, in one short statement; returns how many. */
export async function deleteExpiredRateLimits(knex: Knex, limit: number): Promise<number> {
  const result = await knex.raw<{ rowCount: number }>(
    `DELETE FROM ${TABLE} WHERE key IN (
       SELECT key FROM ${TABLE} WHERE expire <= ? LIMIT ? FOR UPDATE SKIP LOCKED)`,
    [Date.now(), limit],
  );
  return result.rowCount;
}
