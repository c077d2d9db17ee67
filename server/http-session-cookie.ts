import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type Koa from 'koa';
import session from 'koa-session';
import type { Config } from '../config.js';
import { deleteHttpSession, readHttpSession, writeHttpSession } from '../db/http-sessions.js';
import type { Knex } from '../db/knex.js';

/** The login cookie's name, as the reference clients send it (docs/api.md §1). */
export const HTTP_SESSION_COOKIE = 'connect.sid';

/**
 * The cookie value is `<id>.<signature>`: a 256-bit random id and its HMAC under the newest
 * secret, in the one `connect.sid` cookie (express-session style; no second `.sig` cookie).
 * Any configured secret verifies, so secrets rotate without logging everyone out. The store is keyed
 * by the SHA-256 of the id, so the table holds nothing a client could replay.
 */
export class HttpSessionIds {
  constructor(private readonly secrets: string[]) {}

  generate(): string {
    const id = randomBytes(32).toString('base64url');
    return `${id}.${this.sign(id, this.secrets[0]!)}`;
  }

  /** The id inside a well-formed, correctly signed cookie value; null otherwise. */
  verify(value: string): string | null {
    const dot = value.lastIndexOf('.');
    if (dot <= 0 || value.length > 200) return null;
    const id = value.slice(0, dot);
    const given = Buffer.from(value.slice(dot + 1));
    for (const secret of this.secrets) {
      const expected = Buffer.from(this.sign(id, secret));
      if (expected.length === given.length && timingSafeEqual(expected, given)) return id;
    }
    return null;
  }

  /** Store keys of recently seen cookie values: a pure function of the value and the secrets. */
  private readonly keys = new Map<string, string>();

  /** The store key of a cookie value (null when it is not a correctly signed one). */
  storeKey(value: string): string | null {
    const known = this.keys.get(value);
    if (known !== undefined) return known;
    const id = this.verify(value);
    if (id === null) return null;
    const key = createHash('sha256').update(id).digest('hex');
    // Bounded: the oldest entry goes first. Only correctly signed values get in.
    if (this.keys.size >= 10_000) this.keys.delete(this.keys.keys().next().value!);
    this.keys.set(value, key);
    return key;
  }

  private sign(id: string, secret: string): string {
    return createHmac('sha256', secret).update(id).digest('base64url');
  }
}

/** Login sessions: koa-session with the Postgres store, so logout revokes and auth never depends on Redis. */
export function httpSessionMiddleware(app: Koa, config: Config, knex: Knex): Koa.Middleware {
  const ids = new HttpSessionIds(config.sessionSecrets);
  return session(
    {
      key: HTTP_SESSION_COOKIE,
      maxAge: config.sessionMaxAgeMs,
      signed: false,
      httpOnly: true,
      sameSite: 'lax',
      secure: config.nodeEnv === 'production',
      renew: true,
      genid: () => ids.generate(),
      store: {
        async get(key: string, _maxAge: number, { ctx }: { ctx?: Koa.Context }) {
          const storeKey = ids.storeKey(key);
          if (storeKey === null) return null;
          const stored = await readHttpSession(knex, storeKey);
          // Hand the user to `loadUser`, which then needs no query of its own.
          if (ctx && stored?.user && stored.user.id === stored.data.userId) ctx.state.httpSessionUser = stored.user;
          return stored?.data ?? null;
        },
        async set(key: string, data: Record<string, unknown>, maxAge: number) {
          const storeKey = ids.storeKey(key);
          if (storeKey === null) throw new Error('refusing to store a login session under an unsigned key');
          const userId = typeof data.userId === 'string' ? data.userId : null;
          await writeHttpSession(knex, storeKey, data, userId, maxAge);
        },
        async destroy(key: string) {
          const storeKey = ids.storeKey(key);
          if (storeKey !== null) await deleteHttpSession(knex, storeKey);
        },
      },
    },
    app,
  );
}
