import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Config } from '../../config.js';
import type { Knex } from '../../db/knex.js';
import { dummyPasswordHash, verifyPassword } from '../../db/password.js';
import { createUser, findUserByEmail, upgradePasswordHash } from '../../db/users.js';
import type { AccountRow, UserRow } from '../../db/types.js';
import type { AuthLimits } from '../auth-limits.js';
import { conflict, unauthorized } from '../errors.js';
import { jsonBody } from '../middleware/json-body.js';
import { refuseCrossSite } from '../middleware/guards.js';
import { createRouter } from '../routing.js';
import type { Schemas } from '../schemas.js';
import { userToApi } from '../serializers.js';
import type { TypedSchema, Validator } from '../validation.js';

export interface AuthRoutesDeps {
  knex: Knex;
  config: Config;
  validator: Validator;
  schemas: Schemas;
  limits: AuthLimits;
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

async function startHttpSession(ctx: Context, user: AccountRow): Promise<void> {
  // A fresh login session id at every login, so an id known before login is worth nothing after it.
  ctx.session!.userId = user.id;
  await ctx.session!.regenerate();
}

/** Registration, login (and the reference's alias), logout, and who is logged in. */
export function authRoutes(deps: AuthRoutesDeps): Router[] {
  const open = createRouter({ access: 'public' });
  const loggedIn = createRouter({ access: 'user' });
  const body = jsonBody(deps.config.bodyLimitBytes);

  open.post('/api/auth/register', body, async (ctx) => {
    const input = deps.validator.validate<Credentials & { firstName?: string | null; lastName?: string | null }>(
      deps.schemas.register,
      ctx.request.body,
    );
    // Counted before the password is hashed: each hash costs real memory and CPU.
    await deps.limits.beginRegistration(ctx);
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
   * Checks `{email, password}` (validated by `schema`) under the login limits, which count the
   * attempt before the password is checked, and starts a login session; a wrong email or password
   * throws 401 with `failure`. Returns the user and the whole input.
   */
  async function logIn<T extends Credentials>(ctx: Context, schema: TypedSchema<T>, failure: string): Promise<{ user: UserRow; input: T }> {
    const input = deps.validator.validate(schema, ctx.request.body);
    const attempt = await deps.limits.beginLogin(ctx, input.email);
    const user = await findUserByEmail(deps.knex, input.email);
    // Unknown email and wrong password take the same time and say the same thing.
    const cost = deps.config.passwordScryptCost;
    const check = await verifyPassword(input.password, user?.password_hash ?? (await dummyPasswordHash(cost)), cost);
    if (!user || !check.ok) throw unauthorized(failure);
    await attempt.succeeded();
    // An older, weaker hash is replaced while the password is at hand (it never is otherwise).
    if (check.needsRehash) await upgradePasswordHash(deps.knex, user, input.password, cost);
    await startHttpSession(ctx, user);
    return { user, input };
  }

  open.post('/api/auth/login', body, async (ctx) => {
    const { user } = await logIn(ctx, deps.schemas.login, 'Invalid email or password');
    ctx.body = userToApi(user);
  });
  // The reference's form-style alias (a Passport local strategy, which reads a form post as well as
  // JSON): a redirect on success, its own wording on failure.
  open.post('/api/login', jsonBody(deps.config.bodyLimitBytes, { form: true }), async (ctx) => {
    const { input } = await logIn(ctx, deps.schemas.loginRedirect, 'Invalid credentials');
    ctx.redirect(sameSitePath(input.redirect));
  });

  const logout = async (ctx: Context): Promise<void> => {
    ctx.session = null;
    ctx.body = { message: 'Logged out' };
  };
  open.post('/api/auth/logout', logout);
  // A GET that changes state: a link or image on another site must not log the user out.
  open.get('/api/logout', refuseCrossSite(deps.config.publicBaseUrl), logout);

  loggedIn.get('/api/auth/user', (ctx) => {
    ctx.body = userToApi(ctx.state.user!);
  });

  return [open, loggedIn];
}
