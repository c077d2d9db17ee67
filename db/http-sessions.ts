import { preparedQuery, type Knex } from './knex.js';
import type { AccountRow } from './types.js';
import { ACCOUNT_COLUMNS } from './users.js';

export interface StoredHttpSession {
  data: Record<string, unknown>;
  /** The logged-in user, read in the same query (every authenticated request needs both). */
  user: AccountRow | null;
}

/** The login lookup every authenticated request runs: the session with its user's account columns (no password hash). */
export const READ_HTTP_SESSION = `SELECT s.data AS session_data, ${ACCOUNT_COLUMNS.map((c) => `u.${c}`).join(', ')}
  FROM http_sessions s LEFT JOIN users u ON u.id = s.user_id
  WHERE s.id_hash = $1 AND s.expires_at > CURRENT_TIMESTAMP LIMIT 1`;

/** Reads a live (unexpired) session by the hash of its id, with its user. */
export async function readHttpSession(knex: Knex, idHash: string): Promise<StoredHttpSession | null> {
  // Every authenticated request runs this: SQL text rather than the query builder, which would
  // compile the same statement again each time, and straight through node-postgres.
  const [row] = await preparedQuery<AccountRow & { session_data: Record<string, unknown> }>(knex, 'http-session-read', READ_HTTP_SESSION, [idHash]);
  if (!row) return null;
  const { session_data: data, ...user } = row;
  return { data, user: user.id ? (user as AccountRow) : null };
}

export async function writeHttpSession(
  knex: Knex,
  idHash: string,
  data: Record<string, unknown>,
  userId: string | null,
  ttlMs: number,
): Promise<void> {
  const expiresAt = new Date(Date.now() + ttlMs);
  await knex('http_sessions')
    .insert({ id_hash: idHash, data, user_id: userId, expires_at: expiresAt })
    .onConflict('id_hash')
    .merge({ data, user_id: userId, expires_at: expiresAt });
}

export async function deleteHttpSession(knex: Knex, idHash: string): Promise<void> {
  await knex('http_sessions').where({ id_hash: idHash }).del();
}

/** Removes up to `limit` expired rows in one short statement; returns how many (the caller loops). */
export async function pruneHttpSessions(knex: Knex, limit: number): Promise<number> {
  const result = await knex.raw<{ rowCount: number }>(
    `DELETE FROM http_sessions WHERE id_hash IN (
       SELECT id_hash FROM http_sessions WHERE expires_at <= now() LIMIT ? FOR UPDATE SKIP LOCKED)`,
    [limit],
  );
  return result.rowCount;
}
