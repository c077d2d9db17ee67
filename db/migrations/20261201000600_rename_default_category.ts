import type { Knex } from 'knex';

// The reference calls its default category "Uncategorized" (slug `uncategorized`), and its clients
// look it up by that slug. The existing default row is renamed in place, so its id, and every
// session that points at it, stay as they were, and there is still exactly one default. A fresh
// database has no categories yet here: the seed (db/seeds/categories.ts) then inserts it by the new name.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    UPDATE categories SET slug = 'uncategorized', name = 'Uncategorized'
      WHERE is_default AND NOT EXISTS (SELECT 1 FROM categories WHERE slug = 'uncategorized')
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    UPDATE categories SET slug = 'general', name = 'General'
      WHERE is_default AND slug = 'uncategorized' AND NOT EXISTS (SELECT 1 FROM categories WHERE slug = 'general')
  `);
}
