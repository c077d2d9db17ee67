import { loadConfig, type Config } from '../../../config.js';
import { startRedisCluster } from '../../../test/helpers/redis-cluster.js';
import { createRedis } from '../../../workers/queues/connection.js';
import { JobProducer } from '../../../workers/queues/producer.js';
import { closeStore, createQueuePool, openQueue, openWorker, type QueueStore } from '../../../workers/queues/store.js';
import { startServiceProcess } from '../../lib/child-process.js';
import { until, type Bench } from '../harness.js';
import { jobStart, thumbnails } from '../jobs.js';
import type { BenchPart } from '../part.js';
import type { Figure } from '../stats.js';

/** No-op jobs the raw rate's worker runs at once: enough that the store, not the slots, is the limit. */
const RAW_CONCURRENCY = 16;

/** The store a process of `config` would use, for the raw rate's own queue and worker. */
function rawStore(config: Config, role: 'producer' | 'worker'): QueueStore {
  return config.queueBackend === 'postgres'
    ? { kind: 'postgres', pool: createQueuePool(config, `bench-raw-${role}`, role === 'worker' ? RAW_CONCURRENCY + 3 : 4) }
    : { kind: 'redis', redis: createRedis(config.redisUrl, role, `bench-raw-${role}`, { commandTimeoutMs: config.bounds.redisCommandMs }) };
}

/** Jobs/s of the store alone: `count` no-op jobs added in bulk, run by one Worker of {@link RAW_CONCURRENCY}. */
async function rawJobsPerSecond(config: Config, count: number): Promise<number> {
  const producer = rawStore(config, 'producer');
  const consumer = rawStore(config, 'worker');
  const queue = openQueue(producer, config.queuePrefix, 'storerate');
  let done = 0;
  const worker = openWorker(consumer, config.queuePrefix, 'storerate', async () => void (done += 1), { concurrency: RAW_CONCURRENCY, autorun: false });
  try {
    await queue.addBulk(Array.from({ length: count }, (_, i) => ({ name: 'noop', data: { i }, opts: { removeOnComplete: true } })));
    const started = Date.now();
    void worker.run();
    await until('every no-op job', async () => done >= count, 300_000, 20);
    return count / ((Date.now() - started) / 1000);
  } finally {
    await worker.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    await Promise.all([closeStore(producer), closeStore(consumer)]);
  }
}

/** Restarts the bench's web and worker, and replaces its producer, on the store `extra` names. */
async function switchStore(bench: Bench, extra: Record<string, string>): Promise<Config> {
  await Promise.all([bench.web.stop(), bench.worker.stop()]);
  await bench.producer.close();
  const env = { ...bench.env, ...extra };
  const config = loadConfig({ ...process.env, ...env });
  bench.producer = JobProducer.fromConfig(config, 'showrunner-bench');
  bench.web = await startServiceProcess('server/main.ts', env, '"web listening"', { timeoutMs: 60_000, compiled: true });
  bench.worker = await startServiceProcess('workers/main.ts', env, '"worker started"', { timeoutMs: 60_000, compiled: true });
  return config;
}

/**
 * The job stores side by side (`--only stores`): one Redis, a three-master Redis Cluster (started
 * here from redis-server) and PostgreSQL (`QUEUE_BACKEND=postgres`, in the bench's database). For
 * each, in turn within every repetition (so drift on a shared machine falls on all alike): job start
 * p99 (COMMIT → active, through the API), thumbnail throughput, and the store's raw no-op jobs/s.
 */
async function storeFigures(bench: Bench, options: { quick: boolean; reps: number; log: (line: string) => void }): Promise<Figure[]> {
  const samples = options.quick ? 30 : 100;
  const thumbCount = options.quick ? 40 : 120;
  const rawCount = options.quick ? 1_000 : 3_000;
  const cluster = await startRedisCluster(3);
  const stores: { name: string; env: Record<string, string> }[] = [
    { name: 'Redis', env: { QUEUE_BACKEND: 'redis', REDIS_URL: bench.config.redisUrl } },
    { name: 'Redis Cluster', env: { QUEUE_BACKEND: 'redis', REDIS_URL: cluster.url } },
    { name: 'PostgreSQL', env: { QUEUE_BACKEND: 'postgres' } },
  ];
  const results = new Map(stores.map((s) => [s.name, { p99: [] as number[], thumbs: [] as number[], raw: [] as number[] }]));
  try {
    for (let r = 0; r < options.reps; r++) {
      for (const store of stores) {
        options.log(`stores: ${store.name}, repetition ${r + 1}/${options.reps} (restarting web and worker)`);
        const config = await switchStore(bench, store.env);
        await jobStart(bench, 5);
        await thumbnails(bench, 12);
        const figures = results.get(store.name)!;
        figures.p99.push((await jobStart(bench, samples)).commit.p99);
        figures.thumbs.push((await thumbnails(bench, thumbCount)).perSec);
        figures.raw.push(await rawJobsPerSecond(config, rawCount));
      }
    }
  } finally {
    await switchStore(bench, { QUEUE_BACKEND: 'redis', REDIS_URL: bench.config.redisUrl });
    await cluster.destroy();
  }
  return stores.flatMap(({ name }) => {
    const f = results.get(name)!;
    return [
      { name: `job start p99 [${name}]`, unit: 'ms', values: f.p99, better: 'lower' as const },
      { name: `thumbnails [${name}]`, unit: 'jobs/s', values: f.thumbs, better: 'higher' as const },
      { name: `no-op jobs [${name}]`, unit: 'jobs/s', values: f.raw, better: 'higher' as const },
    ];
  });
}

export const storesPart: BenchPart = {
  name: 'stores',
  measures: 'job start p99, thumbnails/s and no-op jobs/s on Redis, a Redis Cluster and PostgreSQL (QUEUE_BACKEND), side by side',
  baseline: 'each store against the others, in turn within every repetition',
  runs: 'only',
  run: async (ctx) => ({ figures: await storeFigures(ctx.bench, ctx) }),
};
