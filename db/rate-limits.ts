import type { Knex } from './knex.js';

export interface RateLimitState {
  failures: number;
  /** When the current window ends. */
  resetAt: Date;
}

/** The failures counted in the current window for `key` (zero when the window has passed). */
export async function readFailures(knex: Knex, key: string, windowMs: number): Promise<RateLimitState> {
  const row = await knex('auth_rate_limits').where({ key }).first('failures', 'window_started_at');
  const started = row ? (row.window_started_at as Date) : null;
  if (!row || !started || started.getTime() + windowMs <= Date.now()) {
    return { failures: 0, resetAt: new Date(Date.now() + windowMs) };
  }
  return { failures: row.failures as number, resetAt: new Date(started.getTime() + windowMs) };
}

/** Counts one failure atomically, opening a new window when the old one has passed. */
export async function recordFailure(knex: Knex, key: string, windowMs: number): Promise<RateLimitState> {
  const { rows } = await knex.raw<{ rows: { failures: number; window_started_at: Date }[] }>(
    `INSERT INTO auth_rate_limits AS r (key, failures, window_started_at) VALUES (?, 1, now())
     ON CONFLICT (key) DO UPDATE SET
       failures = CASE WHEN r.window_started_at + make_interval(secs => ?) <= now() THEN 1 ELSE r.failures + 1 END,
       window_started_at = CASE WHEN r.window_started_at + make_interval(secs => ?) <= now() THEN now() ELSE r.window_started_at END
     RETURNING failures, window_started_at`,
    [key, windowMs / 1000, windowMs / 1000],
  );
  const row = rows[0]!;
  return { failures: row.failures, resetAt: new Date(row.window_started_at.getTime() + windowMs) };
}

/**
 * Removes up to `limit` failed-login windows that closed (started at least `windowMs` ago, so
 * {@link readFailures} already reads them as zero) in one short statement; returns how many.
 */
export async function deleteClosedRateLimitWindows(knex: Knex, windowMs: number, limit: number): Promise<number> {
  const result = await knex.raw<{ rowCount: number }>(
    `DELETE FROM auth_rate_limits WHERE key IN (
       SELECT key FROM auth_rate_limits WHERE window_started_at + make_interval(secs => ?) <= now() LIMIT ? FOR UPDATE SKIP LOCKED)`,
    [windowMs / 1000, limit],
  );
  return result.rowCount;
}
