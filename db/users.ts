import { randomBytes } from 'node:crypto';
import type { Knex } from './knex.js';
import { hashPassword } from './password.js';
import type { Role, UserRow } from './types.js';

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

/** Inserts a user; returns null when the email is taken. */
export async function createUser(knex: Knex, user: NewUser): Promise<UserRow | null> {
  const rows = await knex<UserRow>('users')
    .insert({
      id: newUserId(),
      email: normaliseEmail(user.email),
      first_name: user.firstName ?? null,
      last_name: user.lastName ?? null,
      password_hash: await hashPassword(user.password),
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

export async function findUserById(knex: Knex, id: string): Promise<UserRow | undefined> {
  return knex<UserRow>('users').where({ id }).first();
}
