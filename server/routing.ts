import Router from '@koa/router';
import type Koa from 'koa';
import type { Middleware } from 'koa';
import { isUnder, PUBLIC_ADMIN_PATHS, requireAdmin, requireUser } from './middleware/guards.js';

/** Who may call a route: anyone, a logged-in user, or an administrator. */
export type Access = 'public' | 'user' | 'admin';

/** One route of the app, as the route-spelling and access-matrix tests read it. */
export interface RouteInfo {
  method: string;
  /** The path template, e.g. `/api/sessions/:id`. */
  path: string;
  access: Access;
  /** Counted by the API-wide rate limit. */
  rateLimited: boolean;
}

export interface RouterOptions {
  /** Every route of the router requires this; checked before its handler runs. */
  access: Access;
  /** The API-wide rate limit: run on every route of the router, before the access check (as the reference). */
  rateLimit?: Middleware;
}

const ACCESS_GUARD: Record<Access, Middleware | undefined> = { public: undefined, user: requireUser, admin: requireAdmin };
const declared = new WeakMap<Router, { access: Access; rateLimited: boolean }>();
const tables = new WeakMap<Koa, RouteInfo[]>();

/**
 * The one way to make a router (docs/security.md): it matches paths exactly (case-sensitive, no
 * trailing slash; the canonical-path gate turns other spellings away before routing), and runs its
 * rate limit and access guard on each of its routes, so a route cannot be added without them. Paths
 * are written in full (no router prefix), so each route reads as it is requested.
 */
export function createRouter(options: RouterOptions): Router {
  const router = new Router({ sensitive: true, strict: true });
  const guards = [options.rateLimit, ACCESS_GUARD[options.access]].filter((m): m is Middleware => m !== undefined);
  if (guards.length > 0) router.use(...guards);
  declared.set(router, { access: options.access, rateLimited: options.rateLimit !== undefined });
  return router;
}

/**
 * Mounts the routers on `app` and records its route table. Refuses, at start, a route whose path is
 * not canonical or that is reachable with less than admin access under `/admin` or `/api/admin`.
 * `extra` lists routes served by other middleware (the bull-board dashboard).
 */
export function mountRouters(app: Koa, routers: Router[], extra: RouteInfo[] = []): void {
  const table: RouteInfo[] = [...extra];
  for (const router of routers) {
    const meta = declared.get(router);
    if (!meta) throw new Error('mountRouters: every router comes from createRouter (server/routing.ts)');
    for (const layer of router.stack) {
      if (layer.methods.length === 0) continue;
      const path = String(layer.path);
      const staticSegments = path.split('/').filter((s) => !s.startsWith(':'));
      if (path.endsWith('/') || path.includes('//') || staticSegments.some((s) => s !== s.toLowerCase())) {
        throw new Error(`route ${path}: paths are lower-case, without doubled or trailing slashes`);
      }
      const adminOnly = (isUnder(path, '/admin') && !PUBLIC_ADMIN_PATHS.has(path)) || isUnder(path, '/api/admin');
      if (adminOnly && meta.access !== 'admin') throw new Error(`route ${path}: everything under /admin and /api/admin is for admins`);
      for (const method of layer.methods) if (method !== 'HEAD') table.push({ method, path, ...meta });
    }
    app.use(router.routes());
    app.use(router.allowedMethods({ throw: true }));
  }
  tables.set(app, table);
}

/** The routes `mountRouters` recorded for `app`. */
export function routeTable(app: Koa): readonly RouteInfo[] {
  const table = tables.get(app);
  if (!table) throw new Error('routeTable: the app was not built by createApp');
  return table;
}
