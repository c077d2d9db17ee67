import Router from '@koa/router';
import type { Context } from 'koa';
import type { Config } from '../../config.js';
import type { Knex } from '../../db/knex.js';
import { dummyPasswordHash, verifyPassword } from '../../db/password.js';
import { readFailures, recordFailure } from '../../db/rate-limits.js';
import { createUser, findUserByEmail, upgradePasswordHash } from '../../db/users.js';
import type { UserRow } from '../../db/types.js';
import { ApiError, conflict, unauthorized } from '../errors.js';
import { jsonBody } from '../middleware/json-body.js';
import { requireUser } from '../middleware/auth.js';
import type { Schemas } from '../schemas.js';
import { userToApi } from '../serializers.js';
import type { TypedSchema, Validator } from '../validation.js';

export interface AuthRoutesDeps {
  knex: Knex;
  config: Config;
  validator: Validator;
  schemas: Schemas;
}

interface Credentials {
  email: string;
  password: string;
}

/**
 * `redirect` when it is a path on this site (one leading `/`, not `//` or `/\`, which browsers read as
 * another host; no whitespace or control characters), else `/`: the alias is no open redirect.
 */
export function sameSitePath(redirect: string | undefined): string {
  return redirect !== undefined && /^\/(?![/\\])[^\s\x00-\x1f\x7f]*$/.test(redirect) ? redirect : '/';
}

async function startHttpSession(ctx: Context, user: UserRow): Promise<void> {
  // A fresh login session id at every login, so an id known before login is worth nothing after it.
  ctx.session!.userId = user.id;
  await ctx.session!.regenerate();
}

export function authRoutes(deps: AuthRoutesDeps): Router {
  const router = new Router();
  const body = jsonBody(deps.config.bodyLimitBytes);
  const { maxFailures, windowMs } = deps.config.loginRateLimit;

  function rateLimitHeaders(ctx: Context, failures: number, resetAt: Date): void {
    ctx.set('X-RateLimit-Limit', String(maxFailures));
    ctx.set('X-RateLimit-Remaining', String(Math.max(0, maxFailures - failures)));
    // An ISO 8601 time, as the reference and the API-wide limits (middleware/rate-limit.ts) give it.
    ctx.set('X-RateLimit-Reset', resetAt.toISOString());
  }

  function tooMany(resetAt: Date): ApiError {
    const retryAfter = Math.max(1, Math.ceil((resetAt.getTime() - Date.now()) / 1000));
    return new ApiError(
      429,
      'RATE_LIMITED',
      'Too Many Requests',
      `Too many failed login attempts; try again in ${retryAfter} seconds`,
      undefined,
      { 'Retry-After': String(retryAfter) },
      { retryAfter },
    );
  }

  router.post('/api/auth/register', body, async (ctx) => {
    const input = deps.validator.validate<Credentials & { firstName?: string | null; lastName?: string | null }>(
      deps.schemas.register,
      ctx.request.body,
    );
    const user = await createUser(deps.knex, {
      email: input.email,
      password: input.password,
      firstName: input.firstName?.trim() || null,
      lastName: input.lastName?.trim() || null,
    }, deps.config.passwordScryptCost);
    if (!user) throw conflict('An account with this email already exists', 'EMAIL_TAKEN');
    await startHttpSession(ctx, user);
    ctx.status = 201;
    ctx.body = userToApi(user);
  });

  /**
   * Checks `{email, password}` (validated by `schema`) under the failed-login limit and starts a login
   * session; a wrong email or password throws 401 with `failure`. Returns the user and the whole input.
   */
  async function logIn<T extends Credentials>(ctx: Context, schema: TypedSchema<T>, failure: string): Promise<{ user: UserRow; input: T }> {
    const key = `login:${ctx.ip}`;
    const before = await readFailures(deps.knex, key, windowMs);
    rateLimitHeaders(ctx, before.failures, before.resetAt);
    if (before.failures >= maxFailures) throw tooMany(before.resetAt);

    const input = deps.validator.validate(schema, ctx.request.body);
    const user = await findUserByEmail(deps.knex, input.email);
    // Unknown email and wrong password take the same time and say the same thing.
    const cost = deps.config.passwordScryptCost;
    const check = await verifyPassword(input.password, user?.password_hash ?? (await dummyPasswordHash(cost)), cost);
    if (!user || !check.ok) {
      const after = await recordFailure(deps.knex, key, windowMs);
      rateLimitHeaders(ctx, after.failures, after.resetAt);
      throw unauthorized(failure);
    }
    // An older, weaker hash is replaced while the password is at hand (it never is otherwise).
    if (check.needsRehash) await upgradePasswordHash(deps.knex, user, input.password, cost);
    await startHttpSession(ctx, user);
    return { user, input };
  }

  router.post('/api/auth/login', body, async (ctx) => {
    const { user } = await logIn(ctx, deps.schemas.login, 'Invalid email or password');
    ctx.body = userToApi(user);
  });
  // The reference's form-style alias: a redirect on success, its own wording on failure.
  router.post('/api/login', body, async (ctx) => {
    const { input } = await logIn(ctx, deps.schemas.loginRedirect, 'Invalid credentials');
    ctx.redirect(sameSitePath(input.redirect));
  });

  const logout = async (ctx: Context): Promise<void> => {
    ctx.session = null;
    ctx.body = { message: 'Logged out' };
  };
  router.post('/api/auth/logout', logout);
  router.get('/api/logout', logout);

  router.get('/api/auth/user', requireUser, (ctx) => {
    ctx.body = userToApi(ctx.state.user!);
  });

  return router;
}
