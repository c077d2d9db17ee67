import type { Knex } from './knex.js';
import type { CategoryRow } from './types.js';

export async function listCategories(knex: Knex): Promise<CategoryRow[]> {
  return knex<CategoryRow>('categories').orderBy([{ column: 'is_default', order: 'desc' }, { column: 'name' }]);
}

export async function findCategory(knex: Knex, id: number): Promise<CategoryRow | undefined> {
  return knex<CategoryRow>('categories').where({ id }).first();
}

export async function findCategoryBySlug(knex: Knex, slug: string): Promise<CategoryRow | undefined> {
  return knex<CategoryRow>('categories').where({ slug }).first();
}

export async function defaultCategory(knex: Knex): Promise<CategoryRow> {
  const row = await knex<CategoryRow>('categories').where({ is_default: true }).first();
  if (!row) throw new Error('no default category: run "npm run migrate" to seed the categories');
  return row;
}
