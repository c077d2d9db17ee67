import { prepareFreshMachine, type FreshMachine } from './fresh-machine.js';
import { closeTestKnex, dropRunDatabases, prepareTestDatabase, prepareWorkerDatabase } from './database.js';
import { stopSharedAzurite } from './job-stack.js';
import { destroySharedRedisCluster } from './redis-cluster.js';

/**
 * Mocha's global fixtures, run once by the main process: one freshly migrated test database per run;
 * the shared Redis Cluster and the job stacks' shared Azurite, if a suite of a serial run started
 * them, go at the end, and so does every database of the run, whose names carry the run's tag
 * (test/helpers/database.ts). (A parallel run's workers start their own cluster and Azurite; those
 * end with the worker process, see their exit hooks.)
 */
let machine: FreshMachine | undefined;

export async function mochaGlobalSetup(): Promise<void> {
  // What a fresh machine lacks (PostgreSQL, redis-server, Chromium) first: test/helpers/fresh-machine.ts.
  machine = await prepareFreshMachine();
  await prepareTestDatabase();
}

export async function mochaGlobalTeardown(): Promise<void> {
  await Promise.all([closeTestKnex(), destroySharedRedisCluster(), stopSharedAzurite()]);
  await dropRunDatabases();
  await machine?.stop();
}

/** Root hooks, run in every process that runs test files (before each file in a parallel run). */
export const mochaHooks = {
  async beforeAll(): Promise<void> {
    await prepareWorkerDatabase();
  },
};
