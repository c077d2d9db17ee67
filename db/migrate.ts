import type { Knex, MigrationFile } from './knex.js';
import { seedCategories } from './seeds/categories.js';

/**
 * Databases migrated before migration names dropped their extension recorded `<name>.ts` or
 * `<name>.js`; this renames those rows once, so knex sees them as the same migrations. Every
 * entry point that asks knex about migrations calls it first.
 */
export async function normaliseMigrationNames(knex: Knex): Promise<void> {
  if (!(await knex.schema.hasTable('knex_migrations'))) return;
  await knex('knex_migrations')
    .where('name', '~', '\\.(ts|js)$')
    .update({ name: knex.raw(`regexp_replace(name, '\\.(ts|js)$', '')`) });
}

/** Names of migrations not yet applied. */
export async function pendingMigrations(knex: Knex): Promise<string[]> {
  await normaliseMigrationNames(knex);
  const [, pending] = (await knex.migrate.list()) as [unknown[], MigrationFile[]];
  return pending.map((m) => m.name);
}

/** Applies every pending migration, then the reference data every environment needs. */
export async function migrateLatest(knex: Knex): Promise<string[]> {
  await normaliseMigrationNames(knex);
  const [, applied] = (await knex.migrate.latest()) as [number, string[]];
  await seedCategories(knex);
  return applied;
}

/** Undoes the last batch of migrations; returns the names undone. */
export async function rollbackLastBatch(knex: Knex): Promise<string[]> {
  await normaliseMigrationNames(knex);
  const [, undone] = (await knex.migrate.rollback()) as [number, string[]];
  return undone;
}

/** Refuses to go on when the schema is behind the code (the web process calls this at start). */
export async function assertMigrationsCurrent(knex: Knex): Promise<void> {
  const pending = await pendingMigrations(knex);
  if (pending.length > 0) {
    throw new Error(`database has ${pending.length} pending migration(s): ${pending.join(', ')}; run "npm run migrate"`);
  }
}
