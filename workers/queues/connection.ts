import { Redis, type RedisOptions } from 'ioredis';

/**
 * Producers (the API's fast path, the relay, scripts) fail fast: no offline queue and a short connect
 * timeout, so a Redis outage surfaces at once as an error the outbox records. Workers block on Redis
 * and must never give up a command (BullMQ's production guide: `maxRetriesPerRequest: null`).
 */
export function createRedis(url: string, role: 'producer' | 'worker', name: string): Redis {
  const common: RedisOptions = {
    connectionName: name,
    connectTimeout: 5_000,
    // Reconnect forever with a capped delay; a Redis that comes back is used again without a restart.
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    lazyConnect: false,
  };
  const options: RedisOptions =
    role === 'producer'
      ? { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 5_000 }
      : { ...common, enableOfflineQueue: true, maxRetriesPerRequest: null };
  const redis = new Redis(url, options);
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash the process.
  redis.on('error', () => undefined);
  return redis;
}
