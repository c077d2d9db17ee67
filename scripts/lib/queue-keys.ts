import { createRedis, masters } from '../../workers/queues/connection.js';

/**
 * Deletes every key under `prefix` (`QUEUE_PREFIX`): the queues' `{prefix}:…` and per-queue
 * `{prefix:queue}:…` keys, and the API rate limits' `prefix:api-rate…`, on every master: what a
 * test's or the benchmark's run leaves in a shared Redis. Call it once every
 * queue, worker and producer of that prefix has closed: BullMQ writes its queues' `meta` keys again
 * as they close, so an obliterate before that still leaves keys behind. A Redis that does not
 * answer within `readyMs` (a test took it away) is left as it is.
 * On `QUEUE_BACKEND=postgres` there are no keys to delete: the queues are rows in the `bullmq` schema
 * of the run's own database, which goes with that database; callers skip this there.
 */
export async function deleteQueueKeys(redisUrl: string, prefix: string, readyMs = 2_000): Promise<number> {
  // Generous: a cleanup may SCAN and delete many keys, and nothing waits on it but the caller.
  const redis = createRedis(redisUrl, 'producer', 'showrunner-key-cleanup', { commandTimeoutMs: 30_000 });
  try {
    const deadline = Date.now() + readyMs;
    while (redis.status !== 'ready' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (redis.status !== 'ready') return 0;
    let deleted = 0;
    for (const node of masters(redis)) {
      for (const match of [`{${prefix}}:*`, `{${prefix}:*`, `${prefix}:*`]) {
        for await (const keys of node.scanStream({ match, count: 500 }) as AsyncIterable<string[]>) {
          // One key per call: on a cluster the keys of one batch may lie in different slots.
          for (const key of keys) deleted += await node.del(key);
        }
      }
    }
    return deleted;
  } finally {
    redis.disconnect();
  }
}
