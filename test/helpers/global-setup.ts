import { closeTestKnex, prepareTestDatabase } from './database.js';
import { destroySharedRedisCluster } from './redis-cluster.js';

/** Mocha root hooks: one freshly migrated test database per run; the shared Redis Cluster, if a suite started it, goes at the end. */
export async function mochaGlobalSetup(): Promise<void> {
  await prepareTestDatabase();
}

export async function mochaGlobalTeardown(): Promise<void> {
  await Promise.all([closeTestKnex(), destroySharedRedisCluster()]);
}
