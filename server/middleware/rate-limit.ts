import type { Context, Middleware } from 'koa';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { RedisClient } from '../../workers/index.js';
import { tooManyRequests, type ApiError } from '../errors.js';

export interface ApiRateLimitOptions {
  /** Requests per window; 0 turns the limit off (no headers, never 429). */
  points: number;
  windowSeconds: number;
  /** Where the counters live, shared by every web process; absent: this process's memory only. */
  redis?: RedisClient;
  /**
   * Or, on `QUEUE_BACKEND=postgres` (no Redis), the counters in PostgreSQL (`db/rate-limits.ts`),
   * built with the given in-memory limiter as its stand-in when a statement fails.
   */
  postgres?: (insurance: RateLimiterAbstract) => RateLimiterAbstract;
  /** Prefix of the Redis keys (and of the in-memory ones). */
  keyPrefix: string;
}

/**
 * The API-wide rate limit (docs/security.md): by user when logged in, else by client address
 * (`ctx.ip`: with `TRUST_PROXY` = n, the address the nearest trusted proxy saw). It is installed by
 * `createRouter` on the routes of the limited routers (`/api/sessions*`, `/api/shared*`,
 * `/api/community*`), so it counts the route a request reached, whatever else it was spelled as.
 * The counters are in Redis so every web process counts the same requests; when Redis is not
 * ready, or a command fails or times out, a per-process in-memory limiter of the same size answers
 * instead, so a request is never refused, nor kept waiting, because Redis is down.
 * Returns undefined when the limit is off.
 */
export function apiRateLimit(options: ApiRateLimitOptions): Middleware | undefined {
  if (options.points === 0) return undefined;
  const shape = { points: options.points, duration: options.windowSeconds, keyPrefix: options.keyPrefix };
  const memory = new RateLimiterMemory(shape);
  const limiter: RateLimiterAbstract = options.redis
    ? // rejectIfRedisNotReady: while the connection is down the memory limiter answers at once,
      // rather than each request waiting for a command that cannot be sent.
      new RateLimiterRedis({ ...shape, storeClient: options.redis, rejectIfRedisNotReady: true, insuranceLimiter: memory })
    : (options.postgres?.(memory) ?? memory);

  return async (ctx, next) => {
    const key = ctx.state.user ? `user:${ctx.state.user.id}` : `ip:${ctx.ip}`;
    await consumeOrRefuse(ctx, limiter, key, options.points, 'requests');
    return next();
  };
}

/**
 * Takes one point of `key` from `limiter` and sets the rate-limit headers, or throws the 429 of
 * {@link rateLimited}. Anything but a refusal from the limiter (a store that failed) is thrown as is.
 */
export async function consumeOrRefuse(ctx: Context, limiter: RateLimiterAbstract, key: string, limit: number, what: string): Promise<RateLimiterRes> {
  try {
    const result = await limiter.consume(key);
    setRateLimitHeaders(ctx, limit, result.remainingPoints, result.msBeforeNext);
    return result;
  } catch (thrown) {
    if (!(thrown instanceof RateLimiterRes)) throw thrown;
    throw rateLimited(ctx, limit, thrown, what);
  }
}

/** `X-RateLimit-Limit`, `-Remaining` and `-Reset` (an ISO 8601 time, as the reference gives it). */
export function setRateLimitHeaders(ctx: Context, limit: number, remaining: number, msBeforeReset: number): void {
  ctx.set('X-RateLimit-Limit', String(limit));
  ctx.set('X-RateLimit-Remaining', String(Math.max(0, Math.min(limit, remaining))));
  ctx.set('X-RateLimit-Reset', new Date(Date.now() + Math.max(0, msBeforeReset)).toISOString());
}

/** The 429 of a spent limit, with its headers set: "Too many <what>; try again in N seconds". */
export function rateLimited(ctx: Context, limit: number, result: RateLimiterRes, what: string): ApiError {
  setRateLimitHeaders(ctx, limit, result.remainingPoints, result.msBeforeNext);
  return tooManyRequests(what, result.msBeforeNext);
}
