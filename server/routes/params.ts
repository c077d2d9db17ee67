import { fieldError } from '../errors.js';

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
