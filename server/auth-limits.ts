import { createHash } from 'node:crypto';
import type { Context } from 'koa';
import { RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Config } from '../config.js';
import type { Knex } from '../db/knex.js';
import { postgresRateLimiter } from '../db/auth-limit-counters.js';
import { consumeOrRefuse, rateLimited, setRateLimitHeaders } from './middleware/rate-limit.js';

const DAY_SECONDS = 24 * 3600;

/** One counted login attempt: tell it the password was right, and it gives the attempt back. */
export interface LoginAttempt {
  succeeded(): Promise<void>;
}

/**
 * The login and registration limits (docs/security.md), after rate-limiter-flexible's
 * login-protection pattern. Counters live in PostgreSQL (`db/auth-limit-counters.ts`), which login needs
 * anyway, so they are shared by every web process and auth never depends on Redis.
 *
 * Every attempt is consumed, atomically, BEFORE its password is checked: of parallel guesses only as
 * many as the limit has left reach the check. Three counters:
 * - per address, `LOGIN_MAX_FAILURES` per `LOGIN_WINDOW_SECONDS` (the reference's 5 per 15 min;
 *   its `X-RateLimit-*` headers describe this one);
 * - per address, `LOGIN_DAILY_MAX_FAILURES` per day, against slow guessing that stays under the first;
 * - per account, `LOGIN_ACCOUNT_MAX_FAILURES` consecutive failures from any addresses, after which
 *   the account's logins are refused for `LOGIN_WINDOW_SECONDS` (guessing one password from many
 *   addresses). The account is named by a hash of its email, so unknown emails count the same way
 *   and the table holds no addresses of users.
 * A login that succeeds gives its attempt back to both address counters and clears the account's.
 */
export class AuthLimits {
  private readonly perAddress: RateLimiterAbstract;
  private readonly perAddressDaily: RateLimiterAbstract;
  private readonly perAccount: RateLimiterAbstract;
  private readonly registrations: RateLimiterAbstract | null;

  constructor(
    knex: Knex,
    private readonly config: Pick<Config, 'loginRateLimit' | 'registerRateLimit'>,
  ) {
    const { maxFailures, windowMs, dailyMaxFailures, accountMaxFailures } = config.loginRateLimit;
    const windowSeconds = Math.ceil(windowMs / 1000);
    this.perAddress = postgresRateLimiter(knex, { keyPrefix: 'login-ip', points: maxFailures, durationSeconds: windowSeconds });
    this.perAddressDaily = postgresRateLimiter(knex, { keyPrefix: 'login-ip-day', points: dailyMaxFailures, durationSeconds: DAY_SECONDS, blockDurationSeconds: DAY_SECONDS });
    this.perAccount = postgresRateLimiter(knex, { keyPrefix: 'login-account', points: accountMaxFailures, durationSeconds: DAY_SECONDS, blockDurationSeconds: windowSeconds });
    this.registrations =
      config.registerRateLimit > 0 ? postgresRateLimiter(knex, { keyPrefix: 'register-ip', points: config.registerRateLimit, durationSeconds: 3600 }) : null;
  }

  /** Counts a login attempt for `ctx.ip` and `email`, or throws 429 when any of the three is spent. */
  async beginLogin(ctx: Context, email: string): Promise<LoginAttempt> {
    const { maxFailures, dailyMaxFailures, accountMaxFailures } = this.config.loginRateLimit;
    const account = accountKey(email);
    // All three at once, each its own atomic upsert. When one counter refuses, the others give their
    // point back: a refused attempt counts only where it was refused (giving that one back too would
    // restart a lock at every attempt during it, which would then never end).
    const counters: [RateLimiterAbstract, string, number, string][] = [
      [this.perAddress, ctx.ip, maxFailures, 'failed login attempts'],
      [this.perAddressDaily, ctx.ip, dailyMaxFailures, 'failed login attempts from this address today'],
      [this.perAccount, account, accountMaxFailures, 'failed login attempts for this account'],
    ];
    const outcomes = await Promise.allSettled(counters.map(([limiter, key]) => limiter.consume(key)));
    const refused = outcomes.findIndex((o) => o.status === 'rejected');
    if (refused >= 0) {
      await Promise.all(outcomes.map((o, i) => (o.status === 'fulfilled' ? counters[i]![0].reward(counters[i]![1], 1) : undefined)));
      const reason = (outcomes[refused] as PromiseRejectedResult).reason as unknown;
      if (!(reason instanceof RateLimiterRes)) throw reason;
      const [, , limit, what] = counters[refused]!;
      throw rateLimited(ctx, limit, reason, what);
    }
    const counted = (outcomes[0] as PromiseFulfilledResult<RateLimiterRes>).value;
    setRateLimitHeaders(ctx, maxFailures, counted.remainingPoints, counted.msBeforeNext);
    return {
      succeeded: async () => {
        await Promise.all([this.perAddress.reward(ctx.ip, 1), this.perAddressDaily.reward(ctx.ip, 1), this.perAccount.delete(account)]);
        // What is left after this login, which does not count as a failure.
        setRateLimitHeaders(ctx, maxFailures, counted.remainingPoints + 1, counted.msBeforeNext);
      },
    };
  }

  /** Counts a registration for `ctx.ip` before any password is hashed, or throws 429. */
  async beginRegistration(ctx: Context): Promise<void> {
    if (this.registrations) await consumeOrRefuse(ctx, this.registrations, ctx.ip, this.config.registerRateLimit, 'registrations from this address');
  }
}

const accountKey = (email: string): string => createHash('sha256').update(email.trim().toLowerCase()).digest('base64url');

