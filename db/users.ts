import { randomBytes } from 'node:crypto';
import type { Knex } from './knex.js';
import { hashPassword } from './password.js';
import type { AccountRow, Role, UserRow } from './types.js';

export interface NewUser {
  email: string;
  password: string;
  firstName?: string | null;
  lastName?: string | null;
  role?: Role;
}

export function newUserId(): string {
  return `user_${randomBytes(12).toString('base64url')}`;
}

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** Inserts a user, the password hashed at `scryptCost` (log2 N, `PASSWORD_SCRYPT_COST`); returns null when the email is taken. */
export async function createUser(knex: Knex, user: NewUser, scryptCost: number): Promise<UserRow | null> {
  const rows = await knex<UserRow>('users')
    .insert({
      id: newUserId(),
      email: normaliseEmail(user.email),
      first_name: user.firstName ?? null,
      last_name: user.lastName ?? null,
      password_hash: await hashPassword(user.password, scryptCost),
      role: user.role ?? 'user',
    })
    .onConflict(knex.raw('(email)'))
    .ignore()
    .returning('*');
  return rows[0] ?? null;
}

export async function findUserByEmail(knex: Knex, email: string): Promise<UserRow | undefined> {
  return knex<UserRow>('users').where({ email: normaliseEmail(email) }).first();
}

/** The columns of an {@link AccountRow}: what a request may hold of its user (no password hash). */
export const ACCOUNT_COLUMNS = ['id', 'email', 'first_name', 'last_name', 'profile_image_url', 'role', 'created_at', 'updated_at'] as const satisfies readonly (keyof AccountRow)[];

export async function findUserById(knex: Knex, id: string): Promise<AccountRow | undefined> {
  return knex<UserRow>('users').where({ id }).first(...ACCOUNT_COLUMNS);
}

/**
 * Replaces the user's password hash with a new one of `password` at `scryptCost`, after a login that
 * proved the password against the older hash: only while the stored hash is still the one checked,
 * so a password changed meanwhile is never overwritten. True when it was replaced.
 */
export async function upgradePasswordHash(knex: Knex, user: Pick<UserRow, 'id' | 'password_hash'>, password: string, scryptCost: number): Promise<boolean> {
  const next = await hashPassword(password, scryptCost);
  return (await knex('users').where({ id: user.id, password_hash: user.password_hash }).update({ password_hash: next })) > 0;
}
