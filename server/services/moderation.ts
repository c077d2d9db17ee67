import type { Knex } from '../../db/knex.js';
import { deleteSnapshotById, insertModerationAudit, latestModeratedSnapshot, setSessionModeration, setSnapshotHidden, type ModerationAction } from '../../db/moderation.js';
import { writeOutboxJobs, type WrittenOutboxJob } from '../../db/outbox.js';
import { lockSession, updateSession } from '../../db/sessions.js';
import { findSnapshot } from '../../db/snapshots.js';
import type { AccountRow } from '../../db/types.js';
import { jobs } from '../../workers/index.js';
import { conflict, fieldError, notFound } from '../errors.js';

export const REASON_MAX_LENGTH = 500;

/** The reason an admin gives, trimmed: 1–500 characters. */
export function normaliseReason(reason: string): string {
  const trimmed = reason.trim();
  if (trimmed.length === 0 || trimmed.length > REASON_MAX_LENGTH) {
    throw fieldError('reason', `must be a string of 1-${REASON_MAX_LENGTH} characters (after trimming)`);
  }
  return trimmed;
}

export interface ModerationResult {
  action: ModerationAction;
  snapshotId: number;
  sessionId: number;
  auditId: number;
  isHidden: boolean;
  /** The purge job (a removal), to dispatch after COMMIT. */
  outbox: WrittenOutboxJob[];
}

/**
 * Hides or unhides a snapshot and records it, in one transaction. The session carries the hide
 * (`community_moderation`), so a snapshot made by sharing again is hidden too; an unhide clears it.
 */
export async function setHidden(knex: Knex, admin: AccountRow, snapshotId: number, hidden: boolean, reason: string): Promise<ModerationResult> {
  const action: ModerationAction = hidden ? 'hide' : 'unhide';
  const missing = () => notFound(`Community item ${snapshotId} not found`);
  return knex.transaction(async (trx) => {
    const snapshot = await findSnapshot(trx, snapshotId);
    if (!snapshot) throw missing();
    // The session first, then its snapshot: the order a PATCH takes them in, so the two cannot deadlock.
    const locked = await lockSession(trx, snapshot.session_id);
    if (!locked || locked.snapshot?.id !== snapshotId) throw missing();
    const row = await setSnapshotHidden(trx, snapshotId, hidden);
    if (!row) throw missing();
    // A removal in force stays (it is lifted on its own); otherwise the session carries the hide, or nothing.
    if (locked.session.community_moderation !== 'removed') await setSessionModeration(trx, row.session_id, hidden ? { status: 'hidden', reason } : null);
    const auditId = await insertModerationAudit(trx, {
      admin_id: admin.id,
      action,
      snapshot_id: row.id,
      session_id: row.session_id,
      snapshot_title: row.title,
      reason,
    });
    return { action, snapshotId: row.id, sessionId: row.session_id, auditId, isHidden: row.is_hidden, outbox: [] };
  });
}

/**
 * Removes a snapshot as its owner's unshare would, in one transaction: the row goes, its blobs are
 * released by the purge job (an outbox row, dispatched after COMMIT), and the session's
 * `shareToCommunity` becomes false. That last write is an edit of a field the owner edits, so it
 * bumps the session's version like one: a client holding the old ETag gets 412 rather than
 * silently sharing the item again with a stale full-form PATCH. The session carries the removal:
 * sharing it again answers 403 until an admin lifts it.
 */
export async function removeSnapshot(knex: Knex, admin: AccountRow, snapshotId: number, reason: string): Promise<ModerationResult> {
  const missing = () => notFound(`Community item ${snapshotId} not found`);
  return knex.transaction(async (trx) => {
    const snapshot = await findSnapshot(trx, snapshotId);
    if (!snapshot) throw missing();
    // The session first, then its snapshot: the order a PATCH takes them in, so the two cannot deadlock.
    const locked = await lockSession(trx, snapshot.session_id);
    if (!locked || locked.snapshot?.id !== snapshotId || !(await deleteSnapshotById(trx, snapshotId))) throw missing();
    if (locked.session.share_to_community) await updateSession(trx, locked.session, { share_to_community: false });
    // Sharing again is refused until an admin lifts this ({@link liftModeration}).
    await setSessionModeration(trx, snapshot.session_id, { status: 'removed', reason });
    const outbox = await writeOutboxJobs(trx, [jobs.purgeSnapshot(snapshotId)]);
    const auditId = await insertModerationAudit(trx, {
      admin_id: admin.id,
      action: 'remove',
      snapshot_id: snapshotId,
      session_id: snapshot.session_id,
      snapshot_title: snapshot.title,
      reason,
    });
    return { action: 'remove', snapshotId, sessionId: snapshot.session_id, auditId, isHidden: snapshot.is_hidden, outbox };
  });
}

/**
 * Lifts the moderation a session carries (`POST /api/admin/sessions/:id/community/lift`), in one
 * transaction with its audit entry: after a removal the owner may share again; a hide that outlived
 * its snapshot no longer hides the next one, and a live hidden snapshot is shown. The audit entry
 * names the snapshot of the hide or removal it lifts. 404 for no such session, 409 when it carries none.
 */
export async function liftModeration(knex: Knex, admin: AccountRow, sessionId: number, reason: string): Promise<ModerationResult> {
  return knex.transaction(async (trx) => {
    const locked = await lockSession(trx, sessionId);
    if (!locked) throw notFound(`Session ${sessionId} not found`);
    const { session, snapshot } = locked;
    const moderatedSnapshot = session.community_moderation === null ? undefined : await latestModeratedSnapshot(trx, sessionId);
    if (moderatedSnapshot === undefined) throw conflict(`Session ${sessionId} carries no community moderation to lift`, 'NOT_MODERATED');
    await setSessionModeration(trx, sessionId, null);
    const shown = snapshot ? await setSnapshotHidden(trx, snapshot.id, false) : undefined;
    const auditId = await insertModerationAudit(trx, {
      admin_id: admin.id,
      action: 'lift',
      snapshot_id: moderatedSnapshot,
      session_id: sessionId,
      snapshot_title: session.title,
      reason,
    });
    return { action: 'lift', snapshotId: moderatedSnapshot, sessionId, auditId, isHidden: shown?.is_hidden ?? false, outbox: [] };
  });
}
