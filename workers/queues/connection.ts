import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { parseRedisUrl } from '../../config.js';

/** A connection to one Redis or to a Redis Cluster: BullMQ takes either. */
export type RedisClient = Redis | Cluster;

/**
 * The one way the platform connects to Redis. `url` is `REDIS_URL`: `redis://`/`rediss://` gives an
 * ioredis `Redis`, `redis-cluster://h1:p1,h2:p2` an ioredis `Cluster` seeded with those nodes.
 *
 * Producers (the API's fast path, the relay, scripts) fail fast: no offline queue and a short connect
 * timeout, so a Redis outage surfaces at once as an error the outbox records. Workers block on Redis
 * and must never give up a command (BullMQ's production guide: `maxRetriesPerRequest: null`).
 * Lookups on a request's own path (`request`: the API rate limits) fail faster still, no retry and a
 * 500 ms command timeout, so a request never waits on a Redis that hangs; their caller has a fallback.
 */
export function createRedis(url: string, role: 'producer' | 'worker' | 'request', name: string): RedisClient {
  const perCommand: RedisOptions =
    role === 'producer'
      ? { maxRetriesPerRequest: 1, commandTimeout: 5_000 }
      : role === 'request'
        ? { maxRetriesPerRequest: 0, commandTimeout: 500 }
        : { maxRetriesPerRequest: null };
  const offlineQueue = role === 'worker';
  // Reconnect forever with a capped delay; a Redis that comes back is used again without a restart.
  const retry = (times: number): number => Math.min(times * 200, 2_000);
  const target = parseRedisUrl(url);
  const redis: RedisClient =
    target.kind === 'single'
      ? new Redis(url, { connectionName: name, connectTimeout: 5_000, retryStrategy: retry, lazyConnect: false, enableOfflineQueue: offlineQueue, ...perCommand })
      : new Cluster(target.nodes, {
          // Ready only once CLUSTER INFO says cluster_state:ok, so `status === 'ready'` means jobs can be added.
          enableReadyCheck: true,
          enableOfflineQueue: offlineQueue,
          clusterRetryStrategy: retry,
          lazyConnect: false,
          redisOptions: {
            connectionName: name,
            connectTimeout: 5_000,
            ...(target.username ? { username: target.username } : {}),
            ...(target.password ? { password: target.password } : {}),
            ...(target.tls ? { tls: {} } : {}),
            ...perCommand,
          },
        } satisfies ClusterOptions);
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash the process.
  redis.on('error', () => undefined);
  return redis;
}

/** Every master's connection: one Redis is its own only master. For checks that must ask each shard. */
export function masters(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}
