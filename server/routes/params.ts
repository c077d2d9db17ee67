import { ApiError, fieldError } from '../errors.js';

const MAX_INT = 2147483647;

/** A positive 32-bit integer from a path or query parameter, or a 400 naming it. */
export function parseId(value: string | undefined, name: string): number {
  if (value === undefined || !/^\d{1,10}$/.test(value) || Number(value) < 1 || Number(value) > MAX_INT) {
    throw fieldError(name, 'must be a positive integer');
  }
  return Number(value);
}

/** An optional integer query parameter within [min, max]. */
export function parseIntParam(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined || value === '') return fallback;
  if (typeof value !== 'string' || !/^\d{1,10}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw fieldError(name, `must be an integer from ${min} to ${max}`);
  }
  return Number(value);
}

/** An optional single-valued string query parameter. */
export function parseStringParam(value: unknown, name: string, maxLength = 200): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw fieldError(name, 'must be given once');
  if (value.length > maxLength) throw fieldError(name, `must be at most ${maxLength} characters`);
  // Postgres text cannot hold U+0000: compared against a column it fails the query (a 500, not a 400).
  if (value.includes('\u0000')) throw fieldError(name, 'must not contain the NUL character (%00)');
  return value;
}

/** An optional query parameter that must be one of a constant list of values. */
export function parseEnumParam<const V extends string>(value: unknown, name: string, allowed: readonly V[]): V | undefined {
  const given = parseStringParam(value, name);
  if (given === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(given)) throw fieldError(name, `must be one of: ${allowed.map((v) => JSON.stringify(v)).join(', ')}`);
  return given as V;
}

/**
 * How deep any page may reach: `page` × `pageSize` rows at most. An offset costs the rows before
 * it (on `sort=hot` the whole feed is ranked to reach it), so a client cannot ask for page 1,000,000.
 */
export const MAX_PAGE_DEPTH = 10_000;

/**
 * `page` (from 1) and `pageSize` (1 to `maxSize`, else `defaultSize`) from a query, with the row
 * offset they mean. A page ending past {@link MAX_PAGE_DEPTH} rows is a 400 `PAGE_TOO_DEEP`.
 */
export function parsePage(query: Record<string, unknown>, sizes: { defaultSize: number; maxSize: number }): { page: number; pageSize: number; offset: number } {
  const page = parseIntParam(query.page, 'page', 1, 1, MAX_INT);
  const pageSize = parseIntParam(query.pageSize, 'pageSize', sizes.defaultSize, 1, sizes.maxSize);
  if (page * pageSize > MAX_PAGE_DEPTH) {
    throw new ApiError(400, `page ${page} of ${pageSize} would end past row ${MAX_PAGE_DEPTH}, the deepest a page may reach; narrow the filters instead`, {
      code: 'PAGE_TOO_DEEP',
      category: 'Validation Error',
      details: { fields: [{ field: 'page', pointer: '/page', reason: `page × pageSize must be at most ${MAX_PAGE_DEPTH}` }] },
    });
  }
  return { page, pageSize, offset: (page - 1) * pageSize };
}
