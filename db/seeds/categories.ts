import type { Knex } from 'knex';

/** The category list every environment starts with; `uncategorized` is the default, named as in the reference. */
export const CATEGORIES = [
  { slug: 'uncategorized', name: 'Uncategorized', is_default: true },
  { slug: 'art', name: 'Art' },
  { slug: 'photography', name: 'Photography' },
  { slug: 'nature', name: 'Nature' },
  { slug: 'animals', name: 'Animals' },
  { slug: 'gaming', name: 'Gaming' },
  { slug: 'humor', name: 'Humor' },
  { slug: 'other', name: 'Other' },
] as const;

/** Idempotent: inserts missing categories and never moves an existing default. */
export async function seedCategories(knex: Knex): Promise<void> {
  const hasDefault = await knex('categories').where({ is_default: true }).first('id');
  for (const c of CATEGORIES) {
    await knex('categories')
      .insert({ slug: c.slug, name: c.name, is_default: !hasDefault && 'is_default' in c && c.is_default })
      .onConflict('slug')
      .ignore();
  }
}
