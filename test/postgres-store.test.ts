import { expect } from 'chai';
import { pino } from 'pino';
import supertest from 'supertest';
import { promote, registerUser, type TestUser } from './helpers/app.js';
import { createSession, outboxFor, serveImages } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { POSTGRES_STORE_ENV } from './helpers/redis-kinds.js';
import { waitFor } from './helpers/wait.js';
import { createApp } from '../server/app.js';
import { createWebMetrics, type WebMetrics } from '../server/metrics.js';
import { QUEUE_NAMES } from '../workers/queues/contracts.js';

/**
 * The job platform on QUEUE_BACKEND=postgres, where nothing talks to Redis: what used Redis directly
 * (readiness, the API rate limit, metrics, the dashboard, the eviction check and the legacy-key move)
 * either has its PostgreSQL path or is skipped, and the worker holds the connections
 * docs/operations.md counts. The job files themselves run on this store too (`[PostgreSQL store]`).
 */
describe('QUEUE_BACKEND=postgres: no Redis anywhere [PostgreSQL store]', function () {
  this.timeout(120_000);
  let stack: JobStack;
  let admin: TestUser;
  let app: ReturnType<typeof supertest.agent>;
  let metrics: WebMetrics;

  before(async () => {
    // A Redis URL nothing listens on: any use of Redis would fail, or hang, and show.
    stack = await startJobStack({ env: { ...POSTGRES_STORE_ENV, REDIS_URL: 'redis://127.0.0.1:1' } });
    await stack.startWorker();
    metrics = createWebMetrics({ knex: stack.knex, queues: stack.producer });
    const config = { ...stack.config, apiRateLimit: { points: 3, windowSeconds: 60 } };
    const web = createApp({ config, knex: stack.knex, logger: pino({ level: 'silent' }), afterCommit: (ids) => stack.fast.submit(ids), queues: stack.producer, blobs: stack.blobs, metrics });
    app = supertest.agent(web.callback());
    admin = await registerUser(stack.t, { firstName: 'Ops' });
    await promote(stack.t, admin);
  });
  after(async () => stack?.close());

  it('runs the jobs of a session end to end, its queues in the bullmq schema of the stack\'s database', async () => {
    const user = await registerUser(stack.t);
    await serveImages(stack.fixture, 'pgstore', 2);
    const created = await createSession(stack.t, user, { title: 'On PostgreSQL', subreddits: 'pgstore' });
    await waitFor('the thumbnail', async () => (await stack.knex('sessions').where({ id: created.id }).first()).thumbnail);
    for (const row of await outboxFor(stack.knex, created.id)) {
      const job = await waitFor(`${row.queue} outbox-${row.id} completed`, async () => ((await stack.job(row.queue as 'media', row.id))?.state === 'completed' ? true : undefined));
      expect(job).to.equal(true);
    }
    const { rows } = await stack.knex.raw<{ rows: { queue: string }[] }>('SELECT DISTINCT queue FROM bullmq.job ORDER BY queue');
    expect(rows.map((r) => r.queue)).to.include.members(['media', 'thumbnails']);
    expect(stack.workers[0]!.output()).to.not.match(/maxmemory-policy|old queue keys|ECONNREFUSED/);
  });

  it('/readyz checks the queue pool, /metrics and the dashboard API answer from PostgreSQL', async () => {
    const ready = await app.get('/readyz').expect(200);
    expect(ready.body.checks).to.have.keys('postgres', 'queues', 'blobStorage');
    const text = await metrics.registry.metrics();
    for (const queue of QUEUE_NAMES) expect(text).to.match(new RegExp(`^showrunner_queue_jobs\\{queue="${queue}",state="completed"\\} \\d+$`, 'm'));
    expect(text).to.match(/^showrunner_jobs_completed_total\{queue="thumbnails"\} [1-9]\d*$/m);
    const board = await app.get('/admin/queues/api/queues').set('Cookie', admin.cookie).expect(200);
    expect(board.body.queues.map((q: { name: string }) => q.name)).to.have.members([...QUEUE_NAMES]);
  });

  it('counts the API rate limit in PostgreSQL, shared like the login limits', async () => {
    const user = await registerUser(stack.t);
    for (let i = 0; i < 3; i++) await app.get('/api/sessions').set('Cookie', user.cookie).expect(200);
    const refused = await app.get('/api/sessions').set('Cookie', user.cookie).expect(429);
    expect(refused.headers['x-ratelimit-remaining']).to.equal('0');
    const counters = await stack.knex('rate_limits').where('key', 'like', `${stack.config.queuePrefix}:api-rate%`);
    expect(counters.map((c) => Number(c.points))).to.deep.equal([4]);
  });

  it('a worker process holds one LISTEN connection per queue, and its one queue pool stays within the documented size', async () => {
    const { rows } = await stack.knex.raw<{ rows: { application_name: string; n: number }[] }>(
      `SELECT application_name, count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() GROUP BY 1`,
    );
    const count = (name: string): number => rows.find((r) => r.application_name === name)?.n ?? 0;
    for (const queue of QUEUE_NAMES) expect(count(queue), `LISTEN of ${queue}`).to.equal(1);
    // 4 LISTEN + WORKER_CONCURRENCY (4) + 2 + the relay producer's 4 (docs/operations.md).
    expect(count('showrunner-worker-queues') + QUEUE_NAMES.length).to.be.at.most(14);
  });
});
