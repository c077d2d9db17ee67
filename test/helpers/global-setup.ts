import { closeTestKnex, prepareTestDatabase } from './database.js';

/** Mocha root hooks: one freshly migrated test database per run. */
export async function mochaGlobalSetup(): Promise<void> {
  await prepareTestDatabase();
}

export async function mochaGlobalTeardown(): Promise<void> {
  await closeTestKnex();
}
