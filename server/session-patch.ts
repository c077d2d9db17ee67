import type { SessionChanges, SnapshotRef } from '../db/sessions.js';
import type { CategoryRow, SessionRow } from '../db/types.js';
import { ApiError, fieldError } from './errors.js';
import type { SessionBody } from './schemas.js';
import { assertIntervalOrder, normaliseSubreddits, normaliseThumbnailUrl, normaliseTitle } from './session-rules.js';

/**
 * A PATCH body (already valid against its JSON schema) with title, subreddits and thumbnail in the
 * form the row stores them: a custom thumbnail is its URL, `""` still asks for a generated one.
 */
export type SessionPatch = Omit<SessionBody, 'subreddits'> & { subreddits?: string[] };

/** A job a session change needs; the transaction turns each into outbox rows (and snapshot rows). */
export type SessionJob =
  | { kind: 'syncMedia' }
  | { kind: 'generateThumbnail'; generation: number }
  | { kind: 'createSnapshot' }
  | { kind: 'removeSnapshot' };

/** What the plan needs from the database, read by the transaction under the row lock. */
export interface SessionPatchContext {
  /**
   * The category the body's `categoryId` names: the default category for `null`, undefined when
   * the id names none (or the body has no `categoryId`).
   */
  category?: CategoryRow | undefined;
  /** The session's live community snapshot. */
  snapshot: SnapshotRef | null;
}

export interface SessionPatchPlan {
  /** Only the columns whose value changes; empty means the PATCH writes nothing. */
  changes: SessionChanges;
  jobs: SessionJob[];
}

/** Fields an imported session keeps as its source made them, with the column each is stored in. */
const IMPORT_LOCKED = [
  ['subreddits', 'subreddits'],
  ['aiPrompt', 'ai_prompt'],
  ['captionTheme', 'caption_theme'],
] as const satisfies readonly (readonly [keyof SessionBody, keyof SessionChanges])[];

function sameArray(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Every check a PATCH body gets that needs no stored row (so bad input is a 400 before any lookup). */
export function normaliseSessionPatch(body: SessionBody): SessionPatch {
  const { title, subreddits, thumbnail, ...rest } = body;
  const patch: SessionPatch = rest;
  if (title !== undefined) patch.title = normaliseTitle(title);
  if (subreddits !== undefined) patch.subreddits = normaliseSubreddits(subreddits);
  if (thumbnail !== undefined) patch.thumbnail = thumbnail === '' ? '' : normaliseThumbnailUrl(thumbnail);
  return patch;
}

/**
 * A session's category columns from the `categoryId` a client sent and the category it names:
 * `null` is the default category (`default`), an id its category (`manual`), an unknown id a 400.
 */
export function categoryColumns(
  categoryId: number | null,
  category: CategoryRow | undefined,
): Pick<SessionRow, 'category_id' | 'category_source'> {
  if (!category) throw fieldError('categoryId', `refers to no category (${categoryId}); see GET /api/categories`);
  return { category_id: category.id, category_source: categoryId === null ? 'default' : 'manual' };
}

/**
 * The PATCH contract (docs/api.md §3) as a pure step: what a patch changes in a stored session and which
 * jobs that change needs. Throws the 400s that depend on the stored row (imported-session locks,
 * interval order, unknown category). A patch that changes nothing plans no changes and no jobs.
 */
export function planSessionPatch(row: SessionRow, patch: SessionPatch, context: SessionPatchContext): SessionPatchPlan {
  const changes: SessionChanges = {};
  const set = <K extends keyof SessionChanges>(key: K, value: SessionChanges[K] | undefined): void => {
    if (value !== undefined && row[key] !== value) changes[key] = value;
  };
  set('title', patch.title);
  const subredditsChanged = patch.subreddits !== undefined && !sameArray(patch.subreddits, row.subreddits);
  if (subredditsChanged) changes.subreddits = patch.subreddits;
  if (patch.categoryId !== undefined) {
    const category = categoryColumns(patch.categoryId, context.category);
    set('category_id', category.category_id);
    set('category_source', category.category_source);
  }
  set('interval_min', patch.intervalMin);
  set('interval_max', patch.intervalMax);
  set('transition', patch.transition);
  set('ai_prompt', patch.aiPrompt);
  set('caption_theme', patch.captionTheme);
  set('is_public', patch.isPublic);
  set('is_favorite', patch.isFavorite);
  set('is_manual_mode', patch.isManualMode);
  set('share_to_community', patch.shareToCommunity);

  // A full-form client sends the stored values back: only a change of a locked field is refused.
  const refused = row.is_imported ? IMPORT_LOCKED.filter(([, column]) => column in changes).map(([field]) => field) : [];
  if (refused.length > 0) {
    throw new ApiError(400, `${refused.join(', ')} cannot be changed on an imported session`, {
      code: 'IMPORTED_SESSION_LOCKED',
      category: 'Validation Error',
      details: { fields: refused.map((f) => ({ field: f, pointer: `/${f}`, reason: 'cannot be changed on an imported session' })) },
    });
  }
  assertIntervalOrder(patch.intervalMin ?? row.interval_min, patch.intervalMax ?? row.interval_max, {
    intervalMin: patch.intervalMin !== undefined,
    intervalMax: patch.intervalMax !== undefined,
  });

  // Thumbnail: a URL is the user's choice and survives new subreddits; "" (or new subreddits under
  // an automatic thumbnail) asks for a generated one. Either way the generation moves on, so a job
  // already in flight will not write.
  const jobs: SessionJob[] = [];
  if (subredditsChanged) jobs.push({ kind: 'syncMedia' });
  const subreddits = patch.subreddits ?? row.subreddits;
  if (patch.thumbnail !== undefined && patch.thumbnail !== '') {
    if (row.thumbnail !== patch.thumbnail || row.thumbnail_source !== 'custom') {
      changes.thumbnail = patch.thumbnail;
      changes.thumbnail_source = 'custom';
      changes.thumbnail_generation = row.thumbnail_generation + 1;
    }
  } else if (patch.thumbnail === '' || (subredditsChanged && subreddits.length > 0 && row.thumbnail_source === 'auto')) {
    if (patch.thumbnail === '') changes.thumbnail = null;
    changes.thumbnail_source = 'auto';
    changes.thumbnail_generation = row.thumbnail_generation + 1;
    jobs.push({ kind: 'generateThumbnail', generation: changes.thumbnail_generation });
  }

  if (changes.share_to_community === true && !context.snapshot) jobs.push({ kind: 'createSnapshot' });
  if (changes.share_to_community === false && context.snapshot) jobs.push({ kind: 'removeSnapshot' });
  return { changes, jobs };
}
