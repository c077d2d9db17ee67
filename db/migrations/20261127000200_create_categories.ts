import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('categories', (t) => {
    t.increments('id').primary();
    t.text('slug').notNullable().unique();
    t.text('name').notNullable();
    t.boolean('is_default').notNullable().defaultTo(false);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`
    ALTER TABLE categories ADD CONSTRAINT categories_slug_format CHECK (slug ~ '^[a-z0-9-]{1,64}$');
    -- At most one default; the seed guarantees there is one.
    CREATE UNIQUE INDEX categories_one_default ON categories (is_default) WHERE is_default;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('categories');
}
