import type { Context } from 'koa';
import { ApiError, fieldError } from '../errors.js';
import { QUERY_SCHEMAS, type QueryOf, type QueryRoute } from '../schemas.js';
import { validateQuery, type JsonSchema, type TypedSchema } from '../validation.js';

const MAX_INT = 2147483647;

/** A positive 32-bit integer from a path parameter, or a 400 naming it. */
export function parseId(value: string | undefined, name: string): number {
  if (value === undefined || !/^\d{1,10}$/.test(value) || Number(value) < 1 || Number(value) > MAX_INT) {
    throw fieldError(name, 'must be a positive integer');
  }
  return Number(value);
}

/** The route's query string through its schema (server/schemas.ts), or a 400 naming each bad parameter. */
export function queryOf<R extends QueryRoute>(ctx: Context, route: R): QueryOf<R> {
  // Indexed by a type parameter, the schema is a union to the compiler; its own entry is the one asked for.
  const schema: JsonSchema = QUERY_SCHEMAS[route];
  return validateQuery(schema as TypedSchema<QueryOf<R>>, ctx.query);
}

/**
 * How deep any page may reach: `page` × `pageSize` rows at most. An offset costs the rows before
 * it (on `sort=hot` the whole feed is ranked to reach it), so a client cannot ask for page 1,000,000.
 */
export const MAX_PAGE_DEPTH = 10_000;

/**
 * The row offset of `page` (from 1) of `pageSize` rows. A page ending past {@link MAX_PAGE_DEPTH}
 * rows is a 400 `PAGE_TOO_DEEP` naming `page`.
 */
export function pageWindow<P extends { page: number; pageSize: number }>(paging: P): P & { offset: number } {
  const { page, pageSize } = paging;
  if (page * pageSize > MAX_PAGE_DEPTH) {
    throw new ApiError(400, `page ${page} of ${pageSize} would end past row ${MAX_PAGE_DEPTH}, the deepest a page may reach; narrow the filters instead`, {
      code: 'PAGE_TOO_DEEP',
      category: 'Validation Error',
      details: { fields: [{ field: 'page', pointer: '/page', reason: `page × pageSize must be at most ${MAX_PAGE_DEPTH}` }] },
    });
  }
  return { ...paging, offset: (page - 1) * pageSize };
}
