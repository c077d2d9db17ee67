import { randomUUID } from 'node:crypto';
import type { Knex } from './knex.js';
import type { SessionRow } from './types.js';

/** What anyone holding a live share code may see without logging in (docs/api.md §6). */
export interface SharePreviewRow {
  title: string;
  thumbnail: string | null;
  media_count: number;
  creator_first_name: string | null;
}

/**
 * The session's live share code, created if it has none (in the caller's transaction). Two
 * concurrent calls both return the one code: the insert yields to share_codes_one_live, then reads.
 */
export async function ensureShareCode(trx: Knex.Transaction, sessionId: number): Promise<string> {
  await trx('share_codes')
    .insert({ code: randomUUID(), session_id: sessionId })
    .onConflict(trx.raw('(session_id) WHERE revoked_at IS NULL'))
    .ignore();
  const row = (await trx('share_codes').where({ session_id: sessionId }).whereNull('revoked_at').first('code')) as { code: string };
  return row.code;
}

/** Revokes the session's live share code, if any; true when one was revoked. */
export async function revokeShareCode(trx: Knex.Transaction, sessionId: number): Promise<boolean> {
  const rows = await trx('share_codes').where({ session_id: sessionId }).whereNull('revoked_at').update({ revoked_at: trx.fn.now() }).returning('code');
  return rows.length > 0;
}

/** The public session a live code names; undefined when the code is unknown, revoked, or its session is not public. */
export async function findSharedSession(knex: Knex, code: string): Promise<SessionRow | undefined> {
  return knex('share_codes as c')
    .join('sessions as s', 's.id', 'c.session_id')
    .where({ 'c.code': code, 's.is_public': true })
    .whereNull('c.revoked_at')
    .first('s.*');
}

/** The preview of the public session a live code names (same conditions as {@link findSharedSession}). */
export async function findSharePreview(knex: Knex, code: string): Promise<SharePreviewRow | undefined> {
  return knex('share_codes as c')
    .join('sessions as s', 's.id', 'c.session_id')
    .join('users as u', 'u.id', 's.user_id')
    .where({ 'c.code': code, 's.is_public': true })
    .whereNull('c.revoked_at')
    .first(
      's.title',
      's.thumbnail',
      'u.first_name as creator_first_name',
      knex.raw('(SELECT count(*)::int FROM session_media m WHERE m.session_id = s.id) AS media_count'),
    );
}
