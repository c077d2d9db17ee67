import { masters, type RedisClient } from '../../workers/queues/connection.js';
import { startJobStack, type JobStack, type JobStackOptions } from './job-stack.js';
import { sharedRedisCluster, startRedisCluster } from './redis-cluster.js';
import { startRedisServer } from './redis-server.js';

/** A Redis a suite owns, to take away, bring back or empty: one redis-server, or a whole cluster. */
export interface OwnedRedis {
  url: string;
  /** SIGKILLs it (every node of a cluster). */
  stop(): Promise<void>;
  /** Starts it again on the same port(s); a cluster waits for `cluster_state:ok`. */
  start(): Promise<void>;
  destroy(): Promise<void>;
}

/** One kind of Redis the job platform runs on (docs/architecture.md §7: one Redis or a Redis Cluster). */
export interface TestRedis {
  kind: 'redis' | 'cluster';
  /** For suite names: nothing for the single Redis (names stay as they were), ` [Redis Cluster]` for the cluster. */
  suffix: string;
  /** A job stack on this kind's shared Redis: REDIS_URL or the local one, or the run's shared three-master cluster. */
  jobStack(options?: Omit<JobStackOptions, 'redisUrl'>): Promise<JobStack>;
  /**
   * A Redis of this kind owned by the suite: a redis-server, or a three-master cluster on ports of its
   * own. `persist` keeps the data over a stop and start (append-only, fsynced); without it a restart
   * comes back empty (a cluster keeps its `nodes.conf`, so its slots).
   */
  startOwn(options?: { persist?: boolean }): Promise<OwnedRedis>;
}

const single: TestRedis = {
  kind: 'redis',
  suffix: '',
  jobStack: (options = {}) => startJobStack(options),
  startOwn: (options = {}) => startRedisServer(options),
};

const cluster: TestRedis = {
  kind: 'cluster',
  suffix: ' [Redis Cluster]',
  jobStack: async (options = {}) => startJobStack({ ...options, redisUrl: (await sharedRedisCluster()).url }),
  startOwn: (options = {}) => startRedisCluster(3, { persist: options.persist ?? false }),
};

/**
 * Declares a suite once per kind of Redis: `forEachRedis((redis) => describe(\`…${redis.suffix}\`, …))`.
 * `--grep '\[Redis Cluster\]'` (with `--invert` for the other half) runs one kind.
 */
export function forEachRedis(declare: (redis: TestRedis) => void): void {
  for (const redis of [single, cluster]) declare(redis);
}

/** The job store as QUEUE_BACKEND=postgres: the queues in the stack's own database, no Redis at all. */
export interface TestPostgresStore {
  kind: 'postgres';
  suffix: string;
  jobStack(options?: Omit<JobStackOptions, 'redisUrl'>): Promise<JobStack>;
}

/** The web, the workers and the test's own producer of a stack all take it from this environment. */
export const POSTGRES_STORE_ENV = { QUEUE_BACKEND: 'postgres' } as const;

const postgres: TestPostgresStore = {
  kind: 'postgres',
  suffix: ' [PostgreSQL store]',
  jobStack: (options = {}) => startJobStack({ ...options, env: { ...options.env, ...POSTGRES_STORE_ENV } }),
};

/**
 * Declares a suite once per job store: one Redis, a Redis Cluster and PostgreSQL (`QUEUE_BACKEND`).
 * For suites that need only `jobStack`; `--grep '\[PostgreSQL store\]'` runs the PostgreSQL third.
 */
export function forEachStore(declare: (store: TestRedis | TestPostgresStore) => void): void {
  for (const store of [single, cluster, postgres]) declare(store);
}

/** FLUSHALL on every master: on a cluster a plain `flushall()` reaches one node only. */
export async function flushAll(redis: RedisClient): Promise<void> {
  await Promise.all(masters(redis).map((node) => node.flushall()));
}
