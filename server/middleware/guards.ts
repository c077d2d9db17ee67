import type { Context, Middleware } from 'koa';
import { ADMIN_ROLES, type AccountRow } from '../../db/types.js';
import { forbidden, unauthorized } from '../errors.js';

/**
 * The guards every route is built on (docs/security.md). Routes never call these by hand:
 * `server/routing.ts` installs the access guard a router declares on each of its routes, and
 * `server/app.ts` runs the prefix and cross-site guards before any router sees the request.
 */

export const isAdmin = (user: AccountRow | undefined): boolean => user !== undefined && ADMIN_ROLES.includes(user.role);

export const requireUser: Middleware = async (ctx, next) => {
  if (!ctx.state.user) throw unauthorized();
  return next();
};

export const requireAdmin: Middleware = async (ctx, next) => {
  const user = ctx.state.user;
  if (!user) throw unauthorized();
  if (!isAdmin(user)) throw forbidden('Administrator role required');
  return next();
};

/** The operator pages' login page and its script: the only paths under `/admin` open to anyone. */
export const ADMIN_LOGIN_PATH = '/admin/login';
export const PUBLIC_ADMIN_PATHS: ReadonlySet<string> = new Set([ADMIN_LOGIN_PATH, `${ADMIN_LOGIN_PATH}.js`]);

/** `path` is `prefix` or lies under it, compared segment-wise. */
export const isUnder = (path: string, prefix: string): boolean => path === prefix || path.startsWith(`${prefix}/`);

/**
 * The guard of every operator page under `/admin`: admins only. A browser that is not logged in is
 * sent to the login page; an API call gets 401, a non-admin 403.
 */
export const adminPageGuard: Middleware = (ctx, next) => {
  const user = ctx.state.user;
  if (!user && ctx.method === 'GET' && ctx.accepts('html', 'json') === 'html' && !isUnder(ctx.path, '/admin/queues/api')) {
    ctx.redirect(`${ADMIN_LOGIN_PATH}?next=${encodeURIComponent(ctx.originalUrl)}`);
    return;
  }
  return requireAdmin(ctx, next);
};

/**
 * Guards whole prefixes before routing, whatever the spelling: the path is compared lower-cased, so
 * `/API/ADMIN/…` or `/Admin/queues` meet the same guard as their canonical form (and then no route,
 * since routers match exactly). `/api/admin/*` is for admins; so is `/admin/*` (bull-board included),
 * but for its login page.
 */
export const prefixGuards: Middleware = (ctx, next) => {
  const path = ctx.path.toLowerCase();
  if (isUnder(path, '/api/admin')) return requireAdmin(ctx, next);
  if (isUnder(path, '/admin') && !PUBLIC_ADMIN_PATHS.has(path)) return adminPageGuard(ctx, next);
  return next();
};

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Why a request comes from another site's page, or null: an `Origin` that is neither this request's
 * own nor `publicOrigin`, or a browser's `Sec-Fetch-Site` of `cross-site` or `same-site` (a sibling
 * host). A request with neither header (curl, a server-side client) carries no ambient cookie of a
 * victim, so it is not cross-site.
 */
export function crossSiteReason(ctx: Context, publicOrigin: string): string | null {
  const origin = ctx.get('origin');
  if (origin && origin !== publicOrigin && origin !== `${ctx.protocol}://${ctx.host}`) return `Origin ${origin}`;
  const site = ctx.get('sec-fetch-site');
  if (site === 'cross-site' || site === 'same-site') return `Sec-Fetch-Site: ${site}`;
  return null;
}

/**
 * Refuses (403) every state-changing request that another site's page sent: any method but GET, HEAD
 * and OPTIONS, anywhere. Under `/admin` (pages only a browser writes to, which always sends `Origin`)
 * a write without `Origin` is refused too.
 */
export function refuseCrossSiteWrites(publicBaseUrl: string): Middleware {
  const publicOrigin = new URL(publicBaseUrl).origin;
  return async (ctx, next) => {
    if (!SAFE_METHODS.has(ctx.method)) {
      const reason = crossSiteReason(ctx, publicOrigin) ?? (isUnder(ctx.path.toLowerCase(), '/admin') && !ctx.get('origin') ? 'no Origin' : null);
      if (reason) throw forbidden(`Cross-site request refused (${reason})`, 'CROSS_SITE_REQUEST');
    }
    return next();
  };
}

/** For the few GET routes that change state (`GET /api/logout`): refused when another site sent them. */
export function refuseCrossSite(publicBaseUrl: string): Middleware {
  const publicOrigin = new URL(publicBaseUrl).origin;
  return async (ctx, next) => {
    const reason = crossSiteReason(ctx, publicOrigin);
    if (reason) throw forbidden(`Cross-site request refused (${reason})`, 'CROSS_SITE_REQUEST');
    return next();
  };
}
