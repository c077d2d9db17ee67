import type { Middleware } from 'koa';
import { ApiError } from '../errors.js';

/** Characters a path never needs to percent-encode (RFC 3986 unreserved), plus those that change its shape. */
const NEEDLESSLY_ENCODED = /[A-Za-z0-9\-._~/\\%]/;

/**
 * Why `path` (as sent, still percent-encoded) is not the one spelling of a route, or null when it is.
 * One spelling: no trailing slash (but `/` itself), no empty segment (`//`), no `.` or `..` segment,
 * no backslash, and no percent-encoding of a character that needs none (`%61` for `a`, `%2f` for `/`,
 * `%2e` for `.`, `%25` for `%`, which would let a second decoding change the path again).
 * Letter case is left to the routers, which match exactly.
 */
export function nonCanonicalReason(path: string): string | null {
  if (!path.startsWith('/')) return 'a path starts with /';
  if (path.length > 1 && path.endsWith('/')) return 'no trailing slash';
  if (path.includes('//')) return 'no empty segments (//)';
  if (path.includes('\\')) return 'no backslashes';
  for (const match of path.matchAll(/%(.{0,2})/g)) {
    const hex = match[1]!;
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return 'malformed percent-encoding';
    if (NEEDLESSLY_ENCODED.test(String.fromCharCode(parseInt(hex, 16)))) return `%${hex} encodes a character that needs no encoding`;
  }
  // Encoded dots are refused above, so a dot segment can only be spelled plainly.
  if (path.split('/').some((segment) => segment === '.' || segment === '..')) return 'no . or .. segments';
  return null;
}

/**
 * The canonical-path gate, first of all routing (docs/security.md): a path spelled other than its
 * canonical form reaches no route and no guard, and answers 404 saying which rule it breaks.
 */
export const canonicalPaths: Middleware = async (ctx, next) => {
  const reason = nonCanonicalReason(ctx.path);
  if (reason) throw new ApiError(404, `No route for ${ctx.method} ${ctx.path}: paths have one spelling (${reason})`);
  return next();
};
