import type { Knex } from '../../db/knex.js';
import { writeOutboxJobs, type OutboxJob, type WrittenOutboxJob } from '../../db/outbox.js';
import { defaultCategory, findCategory } from '../../db/categories.js';
import {
  deleteSessionRow,
  insertSession,
  lockSession,
  readSessionForPatch,
  updateSession,
  updateSessionIfUnchanged,
  type SessionForPatch,
  type SnapshotRef,
} from '../../db/sessions.js';
import { deleteSnapshotOfSession, insertSnapshotFromSession } from '../../db/snapshots.js';
import type { CategoryRow, SessionRow, AccountRow } from '../../db/types.js';
import { jobs, type ThumbnailUrlPolicy } from '../../workers/index.js';
import { fieldError, notFound, preconditionFailed } from '../errors.js';
import type { CreateSessionBody, SessionBody } from '../schemas.js';
import { sessionEtag } from '../serializers.js';
import { categoryColumns, normaliseSessionPatch, planSessionPatch, type SessionJob, type SessionPatch, type SessionPatchPlan } from '../session-patch.js';
import { assertIntervalOrder, normaliseSubreddits, normaliseThumbnailUrl, normaliseTitle } from '../session-rules.js';

export interface SessionResult {
  session: SessionRow;
  snapshot: SnapshotRef | null;
  /** The jobs the transaction wrote to the outbox, with their row ids, to dispatch after COMMIT. */
  outbox: WrittenOutboxJob[];
}

export interface SessionServiceDeps {
  knex: Knex;
  defaultCaptionTheme: string;
  /** The rule a thumbnail URL on our own storage must meet (workers/storage/thumbnail-urls.ts). */
  thumbnailUrls: ThumbnailUrlPolicy;
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

/** The category a `categoryId` names: the default one for `null`; undefined for an unknown id. */
async function lookupCategory(trx: Knex.Transaction, categoryId: number | null): Promise<CategoryRow | undefined> {
  return categoryId === null ? defaultCategory(trx) : findCategory(trx, categoryId);
}

/**
 * Writes what the jobs of a session change need: the snapshot row a share creates or an unshare
 * removes, and the outbox rows. Returns the session's snapshot afterwards and the jobs written.
 */
async function writeJobs(
  trx: Knex.Transaction,
  session: SessionRow,
  planned: SessionJob[],
  snapshot: SnapshotRef | null,
): Promise<Omit<SessionResult, 'session'>> {
  const outbox: OutboxJob[] = [];
  for (const job of planned) {
    switch (job.kind) {
      case 'syncMedia':
        outbox.push(jobs.syncMedia(session.id));
        break;
      case 'generateThumbnail':
        outbox.push(jobs.generateThumbnail(session.id, job.generation));
        break;
      case 'createSnapshot':
        snapshot = await insertSnapshotFromSession(trx, session);
        outbox.push(jobs.createSnapshot(snapshot.id, session.id));
        break;
      case 'removeSnapshot': {
        const removed = await deleteSnapshotOfSession(trx, session.id);
        if (removed !== undefined) outbox.push(jobs.purgeSnapshot(removed));
        snapshot = null;
        break;
      }
    }
  }
  return { snapshot, outbox: await writeOutboxJobs(trx, outbox) };
}

/** Creates a session with its first jobs (media sync, thumbnail, snapshot when shared), in one transaction. */
export async function createSession(deps: SessionServiceDeps, user: AccountRow, body: CreateSessionBody): Promise<SessionResult> {
  const title = normaliseTitle(body.title);
  const subreddits = normaliseSubreddits(body.subreddits);
  if (subreddits.length === 0) throw fieldError('subreddits', 'must name at least one subreddit');
  const intervalMin = body.intervalMin ?? 3;
  const intervalMax = body.intervalMax ?? Math.max(10, intervalMin);
  assertIntervalOrder(intervalMin, intervalMax, { intervalMin: body.intervalMin !== undefined, intervalMax: body.intervalMax !== undefined });
  const customThumbnail = body.thumbnail ? normaliseThumbnailUrl(body.thumbnail, deps.thumbnailUrls) : null;

  return deps.knex.transaction(async (trx) => {
    const categoryId = body.categoryId ?? null;
    const category = categoryColumns(categoryId, await lookupCategory(trx, categoryId));
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
    const planned: SessionJob[] = [{ kind: 'syncMedia' }];
    if (!customThumbnail) planned.push({ kind: 'generateThumbnail', generation: session.thumbnail_generation });
    if (session.share_to_community) planned.push({ kind: 'createSnapshot' });
    return { session, ...(await writeJobs(trx, session, planned, null)) };
  });
}

/**
 * PATCH /api/sessions/:id in one transaction: lock, check `If-Match`, look up the category, plan
 * the change (server/session-patch.ts holds every rule), write it, and write the snapshot and
 * outbox rows its jobs need. A PATCH that changes nothing writes nothing (no version bump, no jobs).
 */
export async function patchSession(
  deps: SessionServiceDeps,
  user: AccountRow,
  id: number,
  body: SessionBody,
  ifMatch: string | undefined,
): Promise<SessionResult> {
  // Everything that needs no database is checked before the transaction opens.
  const patch = normaliseSessionPatch(body, deps.thumbnailUrls);
  const edited = await patchAsRead(deps, user, id, patch, ifMatch);
  if (edited) return edited;

  return deps.knex.transaction(async (trx) => {
    const { session: row, snapshot } = ownSession(await lockSession(trx, id), user, id, ifMatch);
    const category = patch.categoryId === undefined ? undefined : await lookupCategory(trx, patch.categoryId);
    const plan = planSessionPatch(row, patch, { category, snapshot });
    if (Object.keys(plan.changes).length === 0) return { session: row, snapshot, outbox: [] };

    const session = await updateSession(trx, row, plan.changes);
    return { session, ...(await writeJobs(trx, session, plan.jobs, snapshot)) };
  });
}

/** The session as read, when it is the user's: 404 when missing or not theirs (no existence leak), 412 when `If-Match` is given and fails. */
function ownSession(found: SessionForPatch | undefined, user: AccountRow, id: number, ifMatch?: string): SessionForPatch {
  if (!found || found.session.user_id !== user.id) throw notFound(`Session ${id} not found`);
  if (ifMatch !== undefined && !ifMatchAllows(ifMatch, found.session)) {
    throw preconditionFailed(`Session ${id} has changed since you read it (current ETag ${sessionEtag(found.session)})`);
  }
  return found;
}

/**
 * A PATCH planned from the row read without a lock, and written only while the row is exactly as
 * read (its xmin: any write since, a worker's included, changes it), so the result is the one the
 * locked transaction would have given at that moment. A change that writes no jobs (a title, an
 * interval, a flag) is one guarded UPDATE: two round trips instead of a transaction's four. A change
 * with jobs runs the guarded UPDATE (which takes the row lock) and its snapshot and outbox rows in
 * one transaction: the read stands in for the lock read, so it costs what the locked transaction
 * costs, and a full-form client that sends unchanged subreddits back still pays two round trips.
 * Anything else (not found, If-Match failing, a 400, a category to look up, a row written
 * meanwhile) is undefined, and the caller runs the locked transaction, which plans again from the
 * row under its lock and gives the authoritative answer. A patch that changes nothing is answered
 * from the read.
 */
async function patchAsRead(
  deps: SessionServiceDeps,
  user: AccountRow,
  id: number,
  patch: SessionPatch,
  ifMatch: string | undefined,
): Promise<SessionResult | undefined> {
  if (patch.categoryId !== undefined) return undefined;
  const read = await readSessionForPatch(deps.knex, id);
  let found: SessionForPatch;
  let plan: SessionPatchPlan;
  try {
    found = ownSession(read, user, id, ifMatch);
    plan = planSessionPatch(found.session, patch, { category: undefined, snapshot: found.snapshot });
  } catch {
    // The locked transaction gives the answer (404, 412, 400) from the row under its lock.
    return undefined;
  }
  const { session: row, snapshot, rowVersion } = found;
  if (Object.keys(plan.changes).length === 0) return { session: row, snapshot, outbox: [] };
  if (plan.jobs.length === 0) {
    const session = await updateSessionIfUnchanged(deps.knex, row, rowVersion, plan.changes);
    return session && { session, snapshot, outbox: [] };
  }
  return deps.knex.transaction(async (trx) => {
    const session = await updateSessionIfUnchanged(trx, row, rowVersion, plan.changes);
    return session && { session, ...(await writeJobs(trx, session, plan.jobs, snapshot)) };
  });
}

/** Deletes the session (media and snapshot rows cascade) and records the purge of its blobs. */
export async function deleteSession(deps: SessionServiceDeps, user: AccountRow, id: number): Promise<{ outbox: WrittenOutboxJob[] }> {
  return deps.knex.transaction(async (trx) => {
    const { snapshot } = ownSession(await lockSession(trx, id), user, id);
    await deleteSessionRow(trx, id);
    const outbox: OutboxJob[] = [jobs.purgeThumbnails(id)];
    if (snapshot) outbox.push(jobs.purgeSnapshot(snapshot.id));
    return { outbox: await writeOutboxJobs(trx, outbox) };
  });
}
