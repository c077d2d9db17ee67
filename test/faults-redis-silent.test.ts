import { expect } from 'chai';
import { Redis } from 'ioredis';
import { registerUser, type TestUser } from './helpers/app.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { createSession, patch, serveImages } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { request } from './helpers/raw-request.js';
import { startWebProcess } from './helpers/web-process.js';
import { waitFor } from './helpers/wait.js';
import { QUEUE_NAMES } from '../workers/queues/contracts.js';

/** Short bounds, so that a silence a few times longer than them is the scenario scaled down. */
const BOUNDS = { REDIS_COMMAND_TIMEOUT_MS: '1000', API_RATE_LIMIT_TIMEOUT_MS: '200' };

/**
 * Redis goes silent behind a TCP proxy (not SIGSTOP: connections open then are never answered again,
 * new ones are held until the network heals). Every Redis connection has a command timeout and
 * replaces a socket that stays silent past its deadline, so the web keeps answering during the
 * silence and uses Redis again after it, and a worker's connections, blocking ones included, recover.
 */
describe('faults: Redis silent behind a proxy', function () {
  this.timeout(120_000);
  let stack: JobStack;
  let proxy: FaultProxy;
  let direct: Redis;
  let user: TestUser;
  let redisUrl: string;

  before(async () => {
    stack = await startJobStack({ env: { JOB_BACKOFF_MS: '200', JOB_MAX_BACKOFF_MS: '1000', JOB_RETRY_HORIZON_MS: '120000' } });
    const target = new URL(stack.env.REDIS_URL!);
    proxy = await startFaultProxy({ host: target.hostname, port: Number(target.port || 6379) });
    redisUrl = `redis://${proxy.host}:${proxy.port}`;
    direct = new Redis(stack.env.REDIS_URL!);
    user = await registerUser(stack.t);
  });
  afterEach(() => proxy.pass());
  after(async () => {
    direct?.disconnect();
    await proxy?.close();
    await stack?.close();
  });

  const latestOutboxRow = async (sessionId: number) =>
    stack.knex('job_outbox').where({ queue: 'thumbnails' }).whereRaw(`(payload->>'sessionId')::int = ?`, [sessionId]).orderBy('id', 'desc').first();

  it('under a web process: PATCHes keep answering during the silence; after the heal its rate limit and fast path use Redis again', async () => {
    // No worker and no relay run here: only the web's own fast path can dispatch its rows.
    const web = await startWebProcess({ ...stack.env, ...BOUNDS, REDIS_URL: redisUrl, API_RATE_LIMIT: '10000' });
    try {
      const { id } = await createSession(stack.t, user, { title: 'Quiet Redis', subreddits: 'pics' });
      const counter = `${stack.env.QUEUE_PREFIX}:api-rate:user:${user.user.id}`;
      const patchThumbnail = () => request(web.baseUrl, 'PATCH', `/api/sessions/${id}`, user.cookie, { thumbnail: '' });
      expect((await patchThumbnail()).status).to.equal(200);
      await waitFor('the warm-up row dispatched by the web', async () => (await latestOutboxRow(id)).dispatched_at !== null);

      proxy.silent();
      const during = [];
      for (let i = 0; i < 3; i++) during.push(await patchThumbnail());
      expect(during.map((a) => a.status), JSON.stringify(during.map((a) => a.body))).to.deep.equal([200, 200, 200]);
      expect(proxy.mode().kind).to.equal('silent');

      proxy.pass();
      // The counters are in Redis again (shared by every web process), not in this process's memory.
      const counted = Number(await direct.get(counter));
      await waitFor('a PATCH counted in Redis after the heal', async () => (await patchThumbnail()).status === 200 && Number(await direct.get(counter)) > counted, { timeoutMs: 30_000 });
      // And the fast path adds jobs again: a PATCH made now has its row dispatched by the web itself.
      await waitFor('a PATCH made after the heal dispatched by the web', async () => {
        const answer = await patchThumbnail();
        return answer.status === 200 && (await waitFor('its row dispatched', async () => (await latestOutboxRow(id)).dispatched_at !== null, { timeoutMs: 3_000 }).catch(() => false));
      }, { timeoutMs: 30_000 });
      expect(web.output()).to.not.match(/"status":5\d\d/);
    } finally {
      await web.stop();
    }
  });

  it('under a worker: jobs queued during the silence run after the heal, the blocking fetch recovered', async () => {
    await serveImages(stack.fixture, 'quietredis', 2, { width: 320, height: 240 });
    const worker = await stack.startWorker({ ...BOUNDS, REDIS_URL: redisUrl });
    const sessions: number[] = [];
    for (let i = 0; i < 3; i++) sessions.push((await createSession(stack.t, user, { title: `Quiet ${i}`, subreddits: 'quietredis' })).id);
    const thumbnailed = (id: number, generation: number) => async () =>
      String((await stack.knex('sessions').where({ id }).first()).thumbnail ?? '').endsWith(`/thumbnails/sessions/${id}/${generation}.webp`);
    // Warm: the worker has fetched and finished jobs, so its connections (blocking ones too) are open.
    for (const id of sessions) await waitFor(`session ${id}'s first thumbnail`, thumbnailed(id, 1));

    proxy.silent();
    // The test adds the jobs straight to Redis (its fast path does not go through the proxy).
    for (const id of sessions) await patch(stack.t, user, id, { thumbnail: '' });
    // Silent until the worker has given up the connection of each queue's blocking fetch (found dead
    // once it overstayed its block time and deadline) and is trying new ones.
    await waitFor(
      `the worker to abandon its ${QUEUE_NAMES.length} blocking connections during the silence`,
      () => proxy.connections().abandoned >= QUEUE_NAMES.length && proxy.connections().held > 0,
      { timeoutMs: 30_000 },
    );
    // Nothing ran meanwhile: the worker could not reach its queues.
    expect((await stack.knex('sessions').whereIn('id', sessions).pluck('thumbnail')).filter((t: string | null) => t?.endsWith('/2.webp'))).to.deep.equal([]);

    proxy.pass();
    for (const id of sessions) await waitFor(`session ${id}'s second thumbnail after the heal`, thumbnailed(id, 2), { timeoutMs: 30_000 });
    for (const id of sessions) {
      const row = await latestOutboxRow(id);
      await waitFor(`job of row ${row.id} completed`, async () => (await stack.job('thumbnails', row.id))?.state === 'completed');
    }
    expect(worker.hasExited()).to.equal(false);
  });
});
