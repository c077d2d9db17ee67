import type { Knex } from './knex.js';

export interface StoredHttpSession {
  data: Record<string, unknown>;
  userId: string | null;
}

/** Reads a live (unexpired) session by the hash of its id. */
export async function readHttpSession(knex: Knex, idHash: string): Promise<StoredHttpSession | null> {
  const row = await knex('http_sessions')
    .where({ id_hash: idHash })
    .andWhere('expires_at', '>', knex.fn.now())
    .first('data', 'user_id');
  return row ? { data: row.data as Record<string, unknown>, userId: (row.user_id as string | null) ?? null } : null;
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

/** Removes expired rows; returns how many. */
export async function pruneHttpSessions(knex: Knex): Promise<number> {
  return knex('http_sessions').where('expires_at', '<=', knex.fn.now()).del();
}
