import type { Knex } from './knex.js';
import { seedCategories } from './seeds/categories.js';

/** Names of migrations not yet applied. */
export async function pendingMigrations(knex: Knex): Promise<string[]> {
  const [, pending] = (await knex.migrate.list()) as [unknown[], { file: string }[]];
  return pending.map((m) => m.file);
}

/** Applies every pending migration, then the reference data every environment needs. */
export async function migrateLatest(knex: Knex): Promise<string[]> {
  const [, applied] = (await knex.migrate.latest()) as [number, string[]];
  await seedCategories(knex);
  return applied;
}

/** Refuses to go on when the schema is behind the code (the web process calls this at start). */
export async function assertMigrationsCurrent(knex: Knex): Promise<void> {
  const pending = await pendingMigrations(knex);
  if (pending.length > 0) {
    throw new Error(`database has ${pending.length} pending migration(s): ${pending.join(', ')}; run "npm run migrate"`);
  }
}
