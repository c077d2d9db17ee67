import type { Knex } from '../../db/knex.js';
import { insertOutboxJobs, type OutboxJob } from '../../db/outbox.js';
import { defaultCategory, findCategory } from '../../db/categories.js';
import {
  deleteSessionRow,
  insertSession,
  lockSession,
  updateSession,
  type SessionChanges,
  type SnapshotRef,
} from '../../db/sessions.js';
import { deleteSnapshotOfSession, insertSnapshotFromSession } from '../../db/snapshots.js';
import type { SessionRow, SnapshotRow, UserRow } from '../../db/types.js';
import { jobs } from '../../workers/index.js';
import { ApiError, fieldError, notFound, preconditionFailed } from '../errors.js';
import type { CreateSessionBody, SessionBody } from '../schemas.js';
import { sessionEtag } from '../serializers.js';
import { assertIntervalOrder, normaliseSubreddits, normaliseThumbnailUrl, normaliseTitle } from '../session-rules.js';

/** Fields an imported session keeps as its source made them. */
const IMPORT_LOCKED: (keyof SessionBody)[] = ['subreddits', 'aiPrompt', 'captionTheme'];

export interface SessionResult {
  session: SessionRow;
  snapshot: SnapshotRef | null;
  /** Outbox rows written by the transaction, to dispatch after COMMIT. */
  outboxIds: number[];
}

export interface SessionServiceDeps {
  knex: Knex;
  defaultCaptionTheme: string;
}

function sameArray(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** `If-Match` per RFC 9110: `*`, or a list of entity tags compared strongly (a weak tag never matches). */
function ifMatchAllows(header: string, row: SessionRow): boolean {
  if (header.trim() === '*') return true;
  const current = sessionEtag(row);
  return header
    .split(',')
    .map((t) => t.trim())
    .includes(current);
}

async function resolveCategory(
  trx: Knex.Transaction,
  categoryId: number | null | undefined,
): Promise<Pick<SessionRow, 'category_id' | 'category_source'>> {
  if (categoryId === null || categoryId === undefined) {
    return { category_id: (await defaultCategory(trx)).id, category_source: 'default' };
  }
  const category = await findCategory(trx, categoryId);
  if (!category) throw fieldError('categoryId', `refers to no category (${categoryId}); see GET /api/categories`);
  return { category_id: category.id, category_source: 'manual' };
}

/** Creates a session with its first jobs (media sync, thumbnail, snapshot when shared), in one transaction. */
export async function createSession(deps: SessionServiceDeps, user: UserRow, body: CreateSessionBody): Promise<SessionResult> {
  const title = normaliseTitle(body.title);
  const subreddits = normaliseSubreddits(body.subreddits);
  if (subreddits.length === 0) throw fieldError('subreddits', 'must name at least one subreddit');
  const intervalMin = body.intervalMin ?? 3;
  const intervalMax = body.intervalMax ?? Math.max(10, intervalMin);
  assertIntervalOrder(intervalMin, intervalMax, { intervalMin: body.intervalMin !== undefined, intervalMax: body.intervalMax !== undefined });
  const customThumbnail = body.thumbnail ? normaliseThumbnailUrl(body.thumbnail) : null;

  return deps.knex.transaction(async (trx) => {
    const category = await resolveCategory(trx, body.categoryId);
    const session = await insertSession(trx, user.id, {
      title,
      subreddits,
      ...category,
      interval_min: intervalMin,
      interval_max: intervalMax,
      transition: body.transition ?? 'fade',
      thumbnail: customThumbnail,
      thumbnail_source: customThumbnail ? 'custom' : 'auto',
      thumbnail_generation: 1,
      ai_prompt: body.aiPrompt ?? null,
      caption_theme: body.captionTheme ?? deps.defaultCaptionTheme,
      is_public: body.isPublic ?? false,
      share_to_community: body.shareToCommunity ?? false,
      is_favorite: body.isFavorite ?? false,
      is_manual_mode: body.isManualMode ?? false,
    });
    const outbox: OutboxJob[] = [jobs.syncMedia(session.id)];
    if (!customThumbnail) outbox.push(jobs.generateThumbnail(session.id, session.thumbnail_generation));
    let snapshot: SnapshotRow | null = null;
    if (session.share_to_community) {
      snapshot = await insertSnapshotFromSession(trx, session);
      outbox.push(jobs.createSnapshot(snapshot.id, session.id));
    }
    const outboxIds = await insertOutboxJobs(trx, outbox);
    return { session, snapshot, outboxIds };
  });
}

/**
 * PATCH /api/sessions/:id in one transaction: lock, check `If-Match`, merge, validate the merged
 * result, write, create or delete the snapshot row, and record the jobs the change needs.
 * A PATCH that changes nothing writes nothing (no version bump, no jobs).
 */
export async function patchSession(
  deps: SessionServiceDeps,
  user: UserRow,
  id: number,
  body: SessionBody,
  ifMatch: string | undefined,
): Promise<SessionResult> {
  // Everything that needs no database is checked before the transaction opens.
  const title = body.title !== undefined ? normaliseTitle(body.title) : undefined;
  const subreddits = body.subreddits !== undefined ? normaliseSubreddits(body.subreddits) : undefined;
  const customThumbnail = body.thumbnail ? normaliseThumbnailUrl(body.thumbnail) : undefined;

  return deps.knex.transaction(async (trx) => {
    const locked = await lockSession(trx, id);
    if (!locked || locked.session.user_id !== user.id) throw notFound(`Session ${id} not found`);
    const { session: row, snapshot: existing } = locked;
    if (ifMatch !== undefined && !ifMatchAllows(ifMatch, row)) {
      throw preconditionFailed(`Session ${id} has changed since you read it (current ETag ${sessionEtag(row)})`);
    }
    if (row.is_imported) {
      const locked = IMPORT_LOCKED.filter((f) => body[f] !== undefined);
      if (locked.length > 0) {
        throw new ApiError(
          400,
          'IMPORTED_SESSION_LOCKED',
          'Validation Error',
          `${locked.join(', ')} cannot be changed on an imported session`,
          { fields: locked.map((f) => ({ field: f, pointer: `/${f}`, reason: 'cannot be changed on an imported session' })) },
        );
      }
    }

    const changes: SessionChanges = {};
    const set = <K extends keyof SessionChanges>(key: K, value: SessionChanges[K]): void => {
      if (row[key] !== value) changes[key] = value;
    };
    if (title !== undefined) set('title', title);
    const subredditsChanged = subreddits !== undefined && !sameArray(subreddits, row.subreddits);
    if (subredditsChanged) changes.subreddits = subreddits;
    if (body.categoryId !== undefined) {
      const category = await resolveCategory(trx, body.categoryId);
      set('category_id', category.category_id);
      set('category_source', category.category_source);
    }
    if (body.intervalMin !== undefined) set('interval_min', body.intervalMin);
    if (body.intervalMax !== undefined) set('interval_max', body.intervalMax);
    assertIntervalOrder(body.intervalMin ?? row.interval_min, body.intervalMax ?? row.interval_max, {
      intervalMin: body.intervalMin !== undefined,
      intervalMax: body.intervalMax !== undefined,
    });
    if (body.transition !== undefined) set('transition', body.transition);
    if (body.aiPrompt !== undefined) set('ai_prompt', body.aiPrompt);
    if (body.captionTheme !== undefined) set('caption_theme', body.captionTheme);
    if (body.isPublic !== undefined) set('is_public', body.isPublic);
    if (body.isFavorite !== undefined) set('is_favorite', body.isFavorite);
    if (body.isManualMode !== undefined) set('is_manual_mode', body.isManualMode);
    if (body.shareToCommunity !== undefined) set('share_to_community', body.shareToCommunity);

    // Thumbnail: a URL is the user's choice; "" (or new subreddits without a thumbnail) asks for a
    // generated one. Either way the generation moves on, so a job already in flight will not write.
    const merged = subreddits ?? row.subreddits;
    let generateThumbnail = false;
    if (customThumbnail !== undefined) {
      if (row.thumbnail !== customThumbnail || row.thumbnail_source !== 'custom') {
        changes.thumbnail = customThumbnail;
        changes.thumbnail_source = 'custom';
        changes.thumbnail_generation = row.thumbnail_generation + 1;
      }
    } else if (body.thumbnail === '' || (subredditsChanged && merged.length > 0)) {
      if (body.thumbnail === '') changes.thumbnail = null;
      changes.thumbnail_source = 'auto';
      changes.thumbnail_generation = row.thumbnail_generation + 1;
      generateThumbnail = true;
    }

    if (Object.keys(changes).length === 0) {
      return { session: row, snapshot: existing, outboxIds: [] };
    }

    const session = await updateSession(trx, id, changes);
    const outbox: OutboxJob[] = [];
    if (subredditsChanged) outbox.push(jobs.syncMedia(id));
    if (generateThumbnail) outbox.push(jobs.generateThumbnail(id, session.thumbnail_generation));

    let snapshot: SnapshotRef | null = existing;
    if (changes.share_to_community === true && !existing) {
      snapshot = await insertSnapshotFromSession(trx, session);
      outbox.push(jobs.createSnapshot(snapshot.id, id));
    } else if (changes.share_to_community === false) {
      const removed = await deleteSnapshotOfSession(trx, id);
      if (removed !== undefined) outbox.push(jobs.purgeSnapshot(removed));
      snapshot = null;
    }
    const outboxIds = await insertOutboxJobs(trx, outbox);
    return { session, snapshot, outboxIds };
  });
}

/** Deletes the session (media and snapshot rows cascade) and records the purge of its blobs. */
export async function deleteSession(deps: SessionServiceDeps, user: UserRow, id: number): Promise<{ outboxIds: number[] }> {
  return deps.knex.transaction(async (trx) => {
    const locked = await lockSession(trx, id);
    if (!locked || locked.session.user_id !== user.id) throw notFound(`Session ${id} not found`);
    const { snapshot } = locked;
    await deleteSessionRow(trx, id);
    const outbox: OutboxJob[] = [jobs.purgeThumbnails(id)];
    if (snapshot) outbox.push(jobs.purgeSnapshot(snapshot.id));
    return { outboxIds: await insertOutboxJobs(trx, outbox) };
  });
}
