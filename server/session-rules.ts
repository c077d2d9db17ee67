import type { ThumbnailUrlPolicy } from '../workers/index.js';
import { fieldError, validationError } from './errors.js';
import { MAX_SUBREDDITS } from './schemas.js';

const SUBREDDIT = /^[a-z0-9_]{2,21}$/;

/**
 * Normalises subreddits as the reference API does: a comma-separated string or an array; each name
 * trimmed, lowercased, `r/` prefix dropped; empties skipped; duplicates removed (first kept).
 * Throws a 400 naming every invalid name.
 */
export function normaliseSubreddits(input: string | string[]): string[] {
  const parts = Array.isArray(input) ? input.flatMap((s) => s.split(',')) : input.split(',');
  const names: string[] = [];
  const invalid: string[] = [];
  for (const part of parts) {
    const name = part.trim().toLowerCase().replace(/^\/?r\//, '');
    if (name === '') continue;
    if (!SUBREDDIT.test(name)) invalid.push(part.trim());
    else if (!names.includes(name)) names.push(name);
  }
  if (invalid.length > 0) {
    const shown = invalid.slice(0, 5).map((n) => JSON.stringify(n.slice(0, 50)));
    throw fieldError(
      'subreddits',
      `has invalid subreddit name${invalid.length > 1 ? 's' : ''} ${shown.join(', ')}${invalid.length > 5 ? ` and ${invalid.length - 5} more` : ''}: each must be 2-21 letters, digits or underscores`,
    );
  }
  if (names.length > MAX_SUBREDDITS) {
    throw fieldError('subreddits', `has ${names.length} subreddits; at most ${MAX_SUBREDDITS} are allowed`);
  }
  return names;
}

export function normaliseTitle(title: string): string {
  const trimmed = title.trim();
  // Characters as Postgres's char_length and ajv's maxLength count them (code points, not UTF-16 units).
  const length = [...trimmed].length;
  if (length < 1 || length > 200) {
    throw fieldError('title', `must be 1-200 characters after trimming (got ${length})`);
  }
  return trimmed;
}

/**
 * An http(s) URL a browser can load which, on our own storage, is exactly the URL of a blob our jobs
 * write (`policy`: the rule the snapshot job reads thumbnails by); anything else is a 400 on `thumbnail`.
 */
export function normaliseThumbnailUrl(value: string, policy: ThumbnailUrlPolicy): string {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw fieldError('thumbnail', 'must be an http(s) URL, or "" to generate one from the subreddits');
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname) {
    throw fieldError('thumbnail', 'must be an http(s) URL, or "" to generate one from the subreddits');
  }
  const verdict = policy.classify(value);
  if (verdict.kind === 'refused') throw fieldError('thumbnail', verdict.reason);
  return value.trim();
}

/** min ≤ max after merging with stored values; the error names the fields the request sent. */
export function assertIntervalOrder(min: number, max: number, sent: { intervalMin: boolean; intervalMax: boolean }): void {
  if (min <= max) return;
  const fields = [];
  if (sent.intervalMin || !sent.intervalMax) {
    fields.push({ field: 'intervalMin', pointer: '/intervalMin', reason: `must be less than or equal to intervalMax (${min} > ${max})` });
  }
  if (sent.intervalMax) {
    fields.push({ field: 'intervalMax', pointer: '/intervalMax', reason: `must be greater than or equal to intervalMin (${max} < ${min})` });
  }
  throw validationError(fields);
}
