import { expect } from 'chai';
import { Cluster } from 'ioredis';
import { pino } from 'pino';
import supertest from 'supertest';
import { promote, registerUser, type TestUser } from './helpers/app.js';
import { createSession, outboxFor, patch, serveImages } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { startRedisCluster, type RedisCluster } from './helpers/redis-cluster.js';
import { expectDurableSnapshotBlobs } from './helpers/durable-blobs.js';
import { waitFor } from './helpers/wait.js';
import { createApp } from '../server/app.js';
import { createWebMetrics, type WebMetrics } from '../server/metrics.js';
import { QUEUE_NAMES, queueKeyPrefix } from '../workers/queues/contracts.js';

/**
 * The job platform on a Redis Cluster of three masters (REDIS_URL=redis-cluster://…), started and
 * removed by the test. One focused file rather than every job file a second time: the scenarios that
 * touch Redis differently on a cluster (keys and slots, a worker process's blocking connections,
 * producer and relay fail-fast, bull-board, readiness and metrics) in about a tenth of the time.
 */
describe('Redis Cluster: three masters, one hash tag per queue', function () {
  this.timeout(180_000);
  let cluster: RedisCluster;
  let stack: JobStack;
  let admin: TestUser;
  let app: ReturnType<typeof supertest.agent>;
  let metrics: WebMetrics;

  before(async () => {
    cluster = await startRedisCluster(3);
    stack = await startJobStack({ redisUrl: cluster.url });
    await stack.startWorker();
    metrics = createWebMetrics({ knex: stack.knex, queues: stack.producer });
    const web = createApp({ config: stack.config, knex: stack.knex, logger: pino({ level: 'silent' }), afterCommit: (ids) => stack.fast.submit(ids), queues: stack.producer, blobs: stack.blobs, metrics });
    app = supertest.agent(web.callback());
    admin = await registerUser(stack.t, { firstName: 'Ops' });
    await promote(stack.t, admin);
  });
  after(async () => {
    await stack?.close();
    await cluster?.destroy();
  });

  const redis = (): Cluster => stack.producer.redis as Cluster;
  /** The master owning a slot, as `host:port`. */
  async function ownerOf(slot: number): Promise<string> {
    const ranges = await redis().cluster('SLOTS');
    const master = ranges.find(([from, to]) => slot >= from && slot <= to)![2]!;
    return `${master[0]}:${master[1]}`;
  }
  const slotOf = async (key: string): Promise<number> => Number(await redis().cluster('KEYSLOT', key));

  it('is a cluster connection, and the default prefix puts each queue in a slot of its own, over more than one master', async () => {
    expect(redis()).to.be.instanceOf(Cluster);
    expect(redis().nodes('master')).to.have.length(3);
    const slots = await Promise.all(QUEUE_NAMES.map((q) => slotOf(`${queueKeyPrefix('showrunner', q)}:${q}:wait`)));
    expect(new Set(slots).size).to.equal(QUEUE_NAMES.length);
    expect(new Set(await Promise.all(slots.map(ownerOf))).size).to.be.greaterThan(1);
  });

  it('thumbnail and snapshot jobs run end to end through a worker process', async () => {
    const user = await registerUser(stack.t);
    await serveImages(stack.fixture, 'clustered', 2);
    const created = await createSession(stack.t, user, { title: 'On a cluster', subreddits: 'clustered' });
    await waitFor('the thumbnail', async () => (await stack.knex('sessions').where({ id: created.id }).first()).thumbnail);
    await patch(stack.t, user, created.id, { shareToCommunity: true });
    const snapshot = await waitFor('the snapshot to be ready', async () => {
      const row = await stack.knex('community_snapshots').where({ session_id: created.id }).first();
      return row?.status === 'ready' ? row : undefined;
    });
    expect(await stack.knex('community_snapshot_media').where({ snapshot_id: snapshot.id })).to.have.length(2);
    await expectDurableSnapshotBlobs(stack, snapshot);
    for (const row of await outboxFor(stack.knex, created.id)) expect((await stack.job(row.queue as 'media', row.id))?.state, `${row.queue} outbox-${row.id}`).to.equal('completed');

    // Every key of a queue, on whichever master, is in that queue's one slot.
    for (const queue of ['media', 'thumbnails', 'snapshots'] as const) {
      const prefix = queueKeyPrefix(stack.config.queuePrefix, queue);
      const slot = await slotOf(`${prefix}:${queue}:id`);
      const keys = (await Promise.all(redis().nodes('master').map((n) => n.keys(`${prefix}:*`)))).flat();
      expect(keys.length, `keys of ${queue}`).to.be.greaterThan(0);
      expect(new Set(await Promise.all(keys.map(slotOf))), `slots of ${queue}'s keys`).to.deep.equal(new Set([slot]));
    }
  });

  it('/readyz, /metrics and the dashboard API answer from the cluster', async () => {
    const ready = await app.get('/readyz').expect(200);
    expect(ready.body.checks.redis).to.deep.equal({ ok: true });
    // What the metrics listener serves (server/main.ts), read from the same registry.
    const text = await metrics.registry.metrics();
    for (const queue of QUEUE_NAMES) expect(text).to.match(new RegExp(`^showrunner_queue_jobs\\{queue="${queue}",state="completed"\\} \\d+$`, 'm'));
    expect(text).to.match(/^showrunner_jobs_completed_total\{queue="thumbnails"\} [1-9]\d*$/m);
    const board = await app.get('/admin/queues/api/queues').set('Cookie', admin.cookie).expect(200);
    expect((board.body.queues as { name: string }[]).map((q) => q.name).sort()).to.deep.equal([...QUEUE_NAMES].sort());
    const overview = await app.get('/api/admin/overview').set('Cookie', admin.cookie).expect(200);
    expect(overview.body.queues).to.have.keys(...QUEUE_NAMES);
  });

  it('rows written while the whole cluster is down are relayed once it is back, each job run once', async () => {
    const user = await registerUser(stack.t);
    await serveImages(stack.fixture, 'clusteroutage', 1);
    const created = await createSession(stack.t, user, { title: 'Outage', subreddits: 'clusteroutage' });
    await waitFor('the first thumbnail', async () => (await stack.knex('sessions').where({ id: created.id }).first()).thumbnail);
    const before = Number((await stack.knex('job_outbox').max<{ max: number }[]>({ max: 'id' }))[0]!.max);

    await cluster.stop();
    try {
      await patch(stack.t, user, created.id, { thumbnail: '' });
      await patch(stack.t, user, created.id, { shareToCommunity: true });
      const written = await stack.knex('job_outbox').where('id', '>', before);
      expect(written.map((r) => r.dispatched_at)).to.deep.equal([null, null]);
      const down = await app.get('/readyz').expect(503);
      expect(down.body.checks.redis.ok).to.equal(false);
    } finally {
      await cluster.start();
    }
    const rows = await stack.knex('job_outbox').where('id', '>', before).orderBy('id');
    expect(rows).to.have.length(2);
    for (const row of rows) {
      const job = await waitFor(`job outbox-${row.id} to complete`, async () => {
        const j = await stack.job(row.queue, row.id);
        return j?.state === 'completed' ? j : undefined;
      }, { timeoutMs: 60_000 });
      expect(job.attemptsMade, `outbox-${row.id} ran once; its failed attempts: ${job.stacktrace.join('\n')}`).to.equal(1);
    }
    await waitFor('readiness after the cluster returns', async () => (await app.get('/readyz')).status === 200);
  });
});
