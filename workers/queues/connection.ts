import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { parseRedisUrl } from '../../config.js';

/** A connection to one Redis or to a Redis Cluster: BullMQ takes either. */
export type RedisClient = Redis | Cluster;

/** The deadlines of {@link createRedis}'s connections. */
export interface RedisBounds {
  /**
   * How long a command waits for its reply (`REDIS_COMMAND_TIMEOUT_MS`; the API rate limit's
   * connection uses `API_RATE_LIMIT_TIMEOUT_MS`). A blocking fetch waits its own block time plus this.
   */
  commandTimeoutMs: number;
  /**
   * How long a connection with a command outstanding may stay without receiving a byte before its
   * socket is destroyed and a fresh one opened (default: `commandTimeoutMs`).
   */
  deadSocketMs?: number;
}

/** The longest a BullMQ worker blocks on one fetch (`BZPOPMIN`), in seconds: BullMQ's own ceiling. */
const MAX_BLOCK_SECONDS = 10;

/** TCP keepalive's first probe after this long idle: a vanished peer is noticed without any command. */
const KEEPALIVE_IDLE_MS = 10_000;

/**
 * The one way the platform connects to Redis. `url` is `REDIS_URL`: `redis://`/`rediss://` gives an
 * ioredis `Redis`, `redis-cluster://h1:p1,h2:p2` an ioredis `Cluster` seeded with those nodes.
 *
 * Producers (the API's fast path, the relay, scripts) fail fast: no offline queue and a short connect
 * timeout, so a Redis outage surfaces at once as an error the outbox records. Workers block on Redis
 * and must never give up a command (BullMQ's production guide: `maxRetriesPerRequest: null`).
 * Lookups on a request's own path (`request`: the API rate limits) fail faster still, with no retry;
 * their caller has a fallback.
 *
 * Every connection is bounded (docs/architecture.md): a command fails after `commandTimeoutMs`, and a
 * socket that receives nothing for `deadSocketMs` while a command waits is destroyed and replaced
 * (ioredis's `socketTimeout`). A command timeout alone would leave a silently dead connection in
 * place forever, every later command timing out on it. A worker's blocking connection (BullMQ
 * duplicates the one given, see `blockingProfile`) has no command timeout, which would cut its
 * blocking fetch short, and is declared dead only after the longest block plus `deadSocketMs`.
 */
export function createRedis(url: string, role: 'producer' | 'worker' | 'request', name: string, bounds: RedisBounds): RedisClient {
  const deadSocketMs = bounds.deadSocketMs ?? bounds.commandTimeoutMs;
  const perCommand: RedisOptions = {
    commandTimeout: bounds.commandTimeoutMs,
    socketTimeout: deadSocketMs,
    keepAlive: KEEPALIVE_IDLE_MS,
    // By default ioredis sends the commands still queued on a dead socket again on the next one, even
    // those its command timeout already failed: a BullMQ `moveToActive` nobody waits for any more
    // would then take a job that only the stalled check (a lock duration later) gives back.
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: role === 'producer' ? 1 : role === 'request' ? 0 : null,
  };
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
  if (role === 'worker') blockingProfile(redis, { commandTimeout: undefined, socketTimeout: MAX_BLOCK_SECONDS * 1_000 + deadSocketMs });
  // ioredis emits 'error' on every failed reconnect; without a listener Node would crash the process.
  redis.on('error', () => undefined);
  return redis;
}

/**
 * A BullMQ Worker duplicates the connection it is given for its blocking fetch: the duplicates of
 * this one get `options` over the original's.
 */
function blockingProfile(redis: RedisClient, options: Pick<RedisOptions, 'commandTimeout' | 'socketTimeout'>): void {
  if (redis instanceof Cluster) {
    const duplicate = redis.duplicate.bind(redis);
    redis.duplicate = (nodes, override) => duplicate(nodes, { ...override, redisOptions: { ...redis.options.redisOptions, ...override?.redisOptions, ...options } });
  } else {
    const duplicate = redis.duplicate.bind(redis);
    redis.duplicate = (override) => duplicate({ ...override, ...options });
  }
}

/** Every master's connection: one Redis is its own only master. For checks that must ask each shard. */
export function masters(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}
