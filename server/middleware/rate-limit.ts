import type { Context, Middleware } from 'koa';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { RedisClient } from '../../workers/index.js';
import { ApiError } from '../errors.js';

/** The paths the reference limits: `/api/sessions*`, `/api/shared*`, `/api/community*`. */
export const RATE_LIMITED_PATHS = /^\/api\/(?:sessions|shared|community)(?:\/|$)/;

export interface ApiRateLimitOptions {
  /** Requests per window; 0 turns the limit off (no headers, never 429). */
  points: number;
  windowSeconds: number;
  /** Where the counters live, shared by every web process; absent: this process's memory only. */
  redis?: RedisClient;
  /** Prefix of the Redis keys (and of the in-memory ones). */
  keyPrefix: string;
}

/**
 * The API-wide rate limit of docs/api.md §5: by user when logged in, else by client address (`ctx.ip`,
 * which honours `TRUST_PROXY`). The counters are in Redis so that every web process counts the same
 * requests; when Redis is not ready, or a command fails or times out, a per-process in-memory limiter
 * of the same size answers instead, so a request is never refused, nor kept waiting, because Redis is down.
 * Every response of a limited path carries `X-RateLimit-Limit`, `-Remaining` and `-Reset` (ISO 8601).
 */
export function apiRateLimit(options: ApiRateLimitOptions): Middleware {
  if (options.points === 0) return (_ctx, next) => next();
  const shape = { points: options.points, duration: options.windowSeconds, keyPrefix: options.keyPrefix };
  const memory = new RateLimiterMemory(shape);
  const limiter: RateLimiterAbstract = options.redis
    ? // rejectIfRedisNotReady: while the connection is down the memory limiter answers at once,
      // rather than each request waiting for a command that cannot be sent.
      new RateLimiterRedis({ ...shape, storeClient: options.redis, rejectIfRedisNotReady: true, insuranceLimiter: memory })
    : memory;

  return async (ctx, next) => {
    if (!RATE_LIMITED_PATHS.test(ctx.path)) return next();
    const key = ctx.state.user ? `user:${ctx.state.user.id}` : `ip:${ctx.ip}`;
    let result: RateLimiterRes;
    try {
      result = await limiter.consume(key);
    } catch (thrown) {
      // With the insurance limiter in place only a refusal is thrown; anything else is a bug to report.
      if (!(thrown instanceof RateLimiterRes)) throw thrown;
      setHeaders(ctx, options.points, thrown);
      throw tooManyRequests(thrown);
    }
    setHeaders(ctx, options.points, result);
    return next();
  };
}

function setHeaders(ctx: Context, limit: number, result: RateLimiterRes): void {
  ctx.set('X-RateLimit-Limit', String(limit));
  ctx.set('X-RateLimit-Remaining', String(Math.max(0, result.remainingPoints)));
  ctx.set('X-RateLimit-Reset', new Date(Date.now() + result.msBeforeNext).toISOString());
}

function tooManyRequests(result: RateLimiterRes): ApiError {
  const retryAfter = Math.max(1, Math.ceil(result.msBeforeNext / 1000));
  return new ApiError(
    429,
    'RATE_LIMITED',
    'Too Many Requests',
    `Too many requests; try again in ${retryAfter} seconds`,
    undefined,
    { 'Retry-After': String(retryAfter) },
    { retryAfter },
  );
}
