import { closeTestKnex, prepareTestDatabase } from './database.js';
import { stopSharedAzurite } from './job-stack.js';
import { destroySharedRedisCluster } from './redis-cluster.js';

/**
 * Mocha root hooks: one freshly migrated test database per run; the shared Redis Cluster and the
 * job stacks' shared Azurite, if a suite started them, go at the end.
 */
export async function mochaGlobalSetup(): Promise<void> {
  await prepareTestDatabase();
}

export async function mochaGlobalTeardown(): Promise<void> {
  await Promise.all([closeTestKnex(), destroySharedRedisCluster(), stopSharedAzurite()]);
}
