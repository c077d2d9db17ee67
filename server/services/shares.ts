import type { Knex } from '../../db/knex.js';
import { ensureShareCode, revokeShareCode } from '../../db/share-codes.js';
import { lockSession, updateSession } from '../../db/sessions.js';
import type { AccountRow } from '../../db/types.js';
import { notFound } from '../errors.js';

/**
 * POST /api/sessions/:id/share: the session's live share code (the same one every time), and the
 * session made public, in one transaction. Making it public is a user edit (version and updated_at
 * move, as a PATCH of `isPublic` would) that revoking the link undoes (`public_by_share`); a session
 * already public is left as it is, and revoking leaves it public.
 */
export async function shareSession(knex: Knex, user: AccountRow, sessionId: number): Promise<string> {
  return knex.transaction(async (trx) => {
    const locked = await lockSession(trx, sessionId);
    if (!locked || locked.session.user_id !== user.id) throw notFound(`Session ${sessionId} not found`);
    if (!locked.session.is_public) await updateSession(trx, locked.session, { is_public: true, public_by_share: true });
    return ensureShareCode(trx, sessionId);
  });
}

/**
 * DELETE /api/sessions/:id/share: revokes the live code, if any (idempotent), and puts `isPublic`
 * back to what it was before the link: private again when the link made it public. A change of
 * `isPublic` by its owner while the link was live is their explicit choice, and stays (see
 * `planSessionPatch`).
 */
export async function unshareSession(knex: Knex, user: AccountRow, sessionId: number): Promise<void> {
  await knex.transaction(async (trx) => {
    const locked = await lockSession(trx, sessionId);
    if (!locked || locked.session.user_id !== user.id) throw notFound(`Session ${sessionId} not found`);
    await revokeShareCode(trx, sessionId);
    if (locked.session.public_by_share) await updateSession(trx, locked.session, { is_public: false, public_by_share: false });
  });
}
