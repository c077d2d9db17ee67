import type { Knex } from '../knex.js';
import { createUser, findUserByEmail } from '../users.js';

export const DEMO_USER = { email: 'demo@showrunner.local', password: 'showrunner-demo', firstName: 'Demo', lastName: 'User' };

/** Development only: a user to log in with right after `npm run dev` (password hashed at `scryptCost`). Returns it when newly created. */
export async function seedDemoUser(knex: Knex, scryptCost: number): Promise<typeof DEMO_USER | null> {
  if (await findUserByEmail(knex, DEMO_USER.email)) return null;
  await createUser(knex, DEMO_USER, scryptCost);
  return DEMO_USER;
}
