import type { Knex } from '../../db/knex.js';
import { deleteSnapshotById, insertModerationAudit, setSnapshotHidden, type ModerationAction } from '../../db/moderation.js';
import { insertOutboxJobs } from '../../db/outbox.js';
import { lockSession, updateSession } from '../../db/sessions.js';
import { findSnapshot } from '../../db/snapshots.js';
import type { UserRow } from '../../db/types.js';
import { jobs } from '../../workers/index.js';
import { fieldError, notFound } from '../errors.js';

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
  /** The purge job's outbox row (a removal), to dispatch after COMMIT. */
  outboxIds: number[];
}

/** Hides or unhides a snapshot and records it, in one transaction. */
export async function setHidden(knex: Knex, admin: UserRow, snapshotId: number, hidden: boolean, reason: string): Promise<ModerationResult> {
  const action: ModerationAction = hidden ? 'hide' : 'unhide';
  return knex.transaction(async (trx) => {
    const row = await setSnapshotHidden(trx, snapshotId, hidden);
    if (!row) throw notFound(`Community item ${snapshotId} not found`);
    const auditId = await insertModerationAudit(trx, {
      admin_id: admin.id,
      action,
      snapshot_id: row.id,
      session_id: row.session_id,
      snapshot_title: row.title,
      reason,
    });
    return { action, snapshotId: row.id, sessionId: row.session_id, auditId, isHidden: row.is_hidden, outboxIds: [] };
  });
}

/**
 * Removes a snapshot as its owner's unshare would, in one transaction: the row goes, its blobs are
 * released by the purge job (an outbox row, dispatched after COMMIT), and the session's
 * `shareToCommunity` becomes false. That last write is an edit of a field the owner edits, so it
 * bumps the session's version like one: a client holding the old ETag gets 412 rather than
 * silently sharing the item again with a stale full-form PATCH.
 */
export async function removeSnapshot(knex: Knex, admin: UserRow, snapshotId: number, reason: string): Promise<ModerationResult> {
  const missing = () => notFound(`Community item ${snapshotId} not found`);
  return knex.transaction(async (trx) => {
    const snapshot = await findSnapshot(trx, snapshotId);
    if (!snapshot) throw missing();
    // The session first, then its snapshot: the order a PATCH takes them in, so the two cannot deadlock.
    const locked = await lockSession(trx, snapshot.session_id);
    if (!locked || locked.snapshot?.id !== snapshotId || !(await deleteSnapshotById(trx, snapshotId))) throw missing();
    if (locked.session.share_to_community) await updateSession(trx, locked.session, { share_to_community: false });
    const outboxIds = await insertOutboxJobs(trx, [jobs.purgeSnapshot(snapshotId)]);
    const auditId = await insertModerationAudit(trx, {
      admin_id: admin.id,
      action: 'remove',
      snapshot_id: snapshotId,
      session_id: snapshot.session_id,
      snapshot_title: snapshot.title,
      reason,
    });
    return { action: 'remove', snapshotId, sessionId: snapshot.session_id, auditId, isHidden: snapshot.is_hidden, outboxIds };
  });
}
