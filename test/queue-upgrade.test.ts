import { expect } from 'chai';
import { Queue } from 'bullmq';
import { registerUser } from './helpers/app.js';
import { createSession, outboxFor, serveImages } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { waitFor } from './helpers/wait.js';
import { createRedis, type RedisClient } from '../workers/queues/connection.js';
import { QUEUE_NAMES, legacyQueueKeyPrefix, outboxJobId, type QueueName } from '../workers/queues/contracts.js';

/**
 * The upgrade to a hash tag per queue: jobs an older version left under the shared `{QUEUE_PREFIX}`
 * keys (waiting and delayed) are moved to the new keys when workers start, by one of them even when
 * two start at once, and each runs exactly once.
 */
describe('upgrade: jobs under the old shared queue keys', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let stack: JobStack;
  let connection: RedisClient;

  before(async () => {
    redis = await startRedisServer();
    stack = await startJobStack({ redisUrl: redis.url, fastPath: false });
    connection = createRedis(redis.url, 'producer', 'showrunner-test-legacy', { commandTimeoutMs: 5_000 });
  });
  after(async () => {
    connection?.disconnect();
    await stack?.close();
    await redis?.destroy();
  });

  it('two workers starting at once move every waiting and delayed job to the new keys; each runs once', async () => {
    const user = await registerUser(stack.t);
    await serveImages(stack.fixture, 'upgrade', 1);
    const sessions = [];
    for (let i = 0; i < 6; i++) sessions.push(await createSession(stack.t, user, { title: `Old ${i}`, subreddits: 'upgrade' }));
    // What the old version did with these rows: dispatched them under the one shared prefix.
    const rows = (await Promise.all(sessions.map((s) => outboxFor(stack.knex, s.id)))).flat();
    const old = Object.fromEntries(
      QUEUE_NAMES.map((q) => [q, new Queue(q, { connection, prefix: legacyQueueKeyPrefix(stack.config.queuePrefix) })]),
    ) as Record<QueueName, Queue>;
    try {
      for (const [i, row] of rows.entries()) {
        await old[row.queue as QueueName].add(row.job_name, row.payload, { jobId: outboxJobId(row.id), attempts: 5, ...(i % 3 === 0 ? { delay: 300 } : {}) });
      }
      await stack.knex('job_outbox').whereIn('id', rows.map((r) => r.id)).update({ dispatched_at: stack.knex.fn.now() });
      expect((await old.media.getJobCounts('waiting', 'delayed')).delayed).to.be.greaterThan(0);

      await Promise.all([stack.startWorker(), stack.startWorker()]);
      for (const row of rows) {
        const job = await waitFor(`job outbox-${row.id} to complete under the new keys`, async () => {
          const j = await stack.job(row.queue as QueueName, row.id);
          return j?.state === 'completed' ? j : undefined;
        });
        expect(job.attemptsMade, `outbox-${row.id} ran once; its failed attempts: ${job.stacktrace.join('\n')}`).to.equal(1);
      }
      for (const q of QUEUE_NAMES) {
        const left = await old[q].getJobCounts('waiting', 'delayed', 'prioritized', 'active', 'completed', 'failed');
        expect(Object.values(left).reduce((a, b) => a + b, 0), `jobs left under the old ${q} keys`).to.equal(0);
      }
      // BullMQ's worker metrics count every completion: one per job means no job ran twice.
      for (const q of new Set(rows.map((r) => r.queue as QueueName))) {
        const ran = (await stack.producer.queues[q].getMetrics('completed', 0, 0)).meta.count;
        expect(ran, `${q} jobs run`).to.equal(rows.filter((r) => r.queue === q).length);
      }
      for (const s of sessions) expect((await stack.knex('sessions').where({ id: s.id }).first()).thumbnail).to.be.a('string');
    } finally {
      await Promise.all(Object.values(old).map((q) => q.close()));
    }
  });
});
