import type { Knex } from 'knex';

// Revoking a share link puts `is_public` back to what it was before the link (issue 22): true when
// the link made a private session public and its owner has not set `is_public` since. Existing
// sessions say false (unknown is left public rather than hidden from its readers by surprise).
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE sessions ADD COLUMN public_by_share boolean NOT NULL DEFAULT false`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE sessions DROP COLUMN public_by_share`);
}
