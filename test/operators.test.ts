import { expect } from 'chai';
import { promote, registerUser, type TestUser } from './helpers/app.js';
import { createSession, outboxFor, patch, serveImages } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { runScriptFile } from './helpers/script.js';
import { waitFor } from './helpers/wait.js';
import { listenMetrics, type MetricsListener } from '../metrics-listener.js';
import { createApp } from '../server/app.js';
import { createWebMetrics } from '../server/metrics.js';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import supertest from 'supertest';

/** Parses Prometheus text into `name{labels}` → value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

describe('operators: admin API, health, metrics, scripts', function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let stack: JobStack;
  let admin: TestUser;
  let plain: TestUser;
  let app: ReturnType<typeof supertest.agent>;
  let metricsListener: MetricsListener;
  /** `/metrics` as Prometheus scrapes it: from the metrics listener, never the API's port. */
  const scrape = async (): Promise<Map<string, number>> => {
    const res = await fetch(`http://127.0.0.1:${metricsListener.port}/metrics`);
    expect(res.status).to.equal(200);
    return parseMetrics(await res.text());
  };

  before(async () => {
    redis = await startRedisServer();
    stack = await startJobStack({ redisUrl: redis.url });
    await stack.startWorker();
    // The full web app, with queues and blob storage, and its metrics on a listener of their own, as server/main.ts builds them.
    const metrics = createWebMetrics({ knex: stack.knex, queues: stack.producer });
    const web = createApp({ config: stack.config, knex: stack.knex, logger: pino({ level: 'silent' }), afterCommit: (ids) => stack.fast.submit(ids), queues: stack.producer, blobs: stack.blobs, metrics });
    app = supertest.agent(web.callback());
    metricsListener = await listenMetrics({ port: 0, host: '127.0.0.1' }, () => metrics.registry.metrics(), metrics.registry.contentType);
    admin = await registerUser(stack.t, { firstName: 'Ops' });
    await promote(stack.t, admin);
    plain = await registerUser(stack.t);
  });
  after(async () => {
    await metricsListener?.close();
    await stack?.close();
    await redis?.destroy();
  });

  it('admin routes: 401 anonymous, 403 for a user, overview for an admin', async () => {
    await app.get('/api/admin/overview').expect(401);
    await app.get('/api/admin/overview').set('Cookie', plain.cookie).expect(403);
    const res = await app.get('/api/admin/overview').set('Cookie', admin.cookie).expect(200);
    expect(res.body.queues).to.have.keys('media', 'thumbnails', 'snapshots', 'maintenance');
    expect(res.body.outbox).to.include.keys('backlog', 'oldestAgeSeconds');
    expect(res.body.snapshots).to.include.keys('pending', 'copying', 'ready', 'failed');
  });

  it('/readyz names Redis while it is down, and is ready again once it is back', async () => {
    const ok = await app.get('/readyz').expect(200);
    expect(ok.body.checks).to.deep.include({ postgres: { ok: true }, redis: { ok: true }, blobStorage: { ok: true } });
    await redis.stop();
    try {
      const down = await app.get('/readyz').expect(503);
      expect(down.body.message).to.match(/redis/);
      expect(down.body.checks.redis.ok).to.equal(false);
      expect(down.body.checks.postgres.ok).to.equal(true);
    } finally {
      await redis.start();
    }
    await waitFor('readiness after Redis returns', async () => (await app.get('/readyz')).status === 200);
  });

  it('/metrics is Prometheus text and its completed-jobs counter rises by one for one job', async () => {
    await waitFor('the worker to reconnect', async () => (await app.get('/readyz')).status === 200);
    const read = scrape;
    const before = await read();
    const key = 'showrunner_jobs_completed_total{queue="media"}';
    const start = before.get(key) ?? 0;
    expect(before.has('showrunner_outbox_backlog')).to.equal(true);
    const user = await registerUser(stack.t);
    await serveImages(stack.fixture, 'metrics', 1);
    const created = await createSession(stack.t, user, { title: 'M', subreddits: 'metrics', thumbnail: 'https://cdn.example.test/t.png' });
    const row = (await outboxFor(stack.knex, created.id)).find((r) => r.queue === 'media')!;
    await waitFor('the media job to complete', async () => (await stack.job('media', row.id))?.state === 'completed');
    const after = await waitFor('the counter to move', async () => {
      const m = await read();
      return (m.get(key) ?? 0) > start ? m : undefined;
    });
    expect(after.get(key)).to.equal(start + 1);
    expect([...after.keys()].some((k) => k.startsWith('showrunner_http_request_duration_seconds_count{'))).to.equal(true);
  });

  it('snapshots:rerun --status failed brings failed snapshots to ready; --dry-run changes nothing', async () => {
    const user = await registerUser(stack.t);
    const image = await stack.fixture.image('/media/later-src.jpg', { width: 600, height: 400, format: 'jpeg' });
    let up = false;
    stack.fixture.route('/media/later.jpg', (_req, res) => {
      if (!up) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'image/jpeg' }).end(image);
    });
    stack.fixture.setListing(['later'], [{ id: 'later1', kind: 'image', path: '/media/later.jpg' }]);
    const created = await createSession(stack.t, user, { title: 'Later', subreddits: 'later', thumbnail: 'https://cdn.example.test/t.png' });
    await waitFor('media synced', async () => (await stack.knex('session_media').where({ session_id: created.id })).length === 1);
    await patch(stack.t, user, created.id, { shareToCommunity: true });
    const failed = await waitFor('the snapshot to fail', async () => {
      const s = await stack.knex('community_snapshots').where({ session_id: created.id }).first();
      return s?.status === 'failed' ? s : undefined;
    });

    const listed = await app.get('/api/admin/snapshots?status=failed').set('Cookie', admin.cookie).expect(200);
    expect(listed.body.items.map((i: { id: number }) => i.id)).to.include(failed.id);
    expect(listed.body.items.find((i: { id: number }) => i.id === failed.id).lastError).to.match(/404/);

    const dbBefore = JSON.stringify(await stack.knex('community_snapshots').orderBy('id'));
    const outboxBefore = (await stack.knex('job_outbox').count<{ count: number }[]>({ count: '*' }))[0]!.count;
    const jobsBefore = await stack.producer.queues.snapshots.getJobCounts();
    const dry = await runScriptFile('snapshots-rerun.ts', ['--status', 'failed', '--dry-run'], stack.env);
    expect(dry.code, dry.stderr).to.equal(0);
    expect(dry.stdout).to.match(new RegExp(`would rerun snapshot ${failed.id}\\b`)).and.to.match(/dry run: nothing changed/);
    expect(JSON.stringify(await stack.knex('community_snapshots').orderBy('id'))).to.equal(dbBefore);
    expect((await stack.knex('job_outbox').count<{ count: number }[]>({ count: '*' }))[0]!.count).to.equal(outboxBefore);
    expect(await stack.producer.queues.snapshots.getJobCounts()).to.deep.equal(jobsBefore);

    up = true;
    const run = await runScriptFile('snapshots-rerun.ts', ['--status', 'failed', '--wait', '--timeout', '60'], stack.env);
    expect(run.code, run.stdout + run.stderr).to.equal(0);
    expect(run.stdout).to.match(new RegExp(`snapshot ${failed.id}: job completed, snapshot ready`)).and.to.match(/summary: \d+ ready, 0 not ready/);
    expect((await stack.knex('community_snapshots').where({ id: failed.id }).first()).status).to.equal('ready');
  });

  it('scripts answer --help and refuse bad arguments with exit 2', async () => {
    for (const file of ['snapshots-rerun.ts', 'thumbnails-regenerate.ts', 'users-create.ts', 'outbox-status.ts']) {
      const help = await runScriptFile(file, ['--help'], stack.env);
      expect(help.code, file).to.equal(0);
      expect(help.stdout, file).to.match(/^Usage: npm run /);
    }
    const bad = await runScriptFile('snapshots-rerun.ts', ['--status', 'exploded'], stack.env);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/--status takes failed, pending, copying/);
  });

  it('users:create takes the password from stdin and makes an admin who can log in', async () => {
    const email = `ops-${Date.now()}@example.test`;
    const dry = await runScriptFile('users-create.ts', ['--email', email, '--admin', '--dry-run'], stack.env, 'a long operator password\n');
    expect(dry.code, dry.stderr).to.equal(0);
    expect(await stack.knex('users').where({ email })).to.have.length(0);
    const run = await runScriptFile('users-create.ts', ['--email', email, '--admin'], stack.env, 'a long operator password\n');
    expect(run.code, run.stderr).to.equal(0);
    const login = await app.post('/api/auth/login').send({ email, password: 'a long operator password' }).expect(200);
    expect(login.body.role).to.equal('admin');
    const again = await runScriptFile('users-create.ts', ['--email', email], stack.env, 'another password\n');
    expect(again.code).to.equal(1);
  });

  it('thumbnails:regenerate regenerates an auto thumbnail and skips custom ones', async () => {
    const user = await registerUser(stack.t);
    await serveImages(stack.fixture, 'regen', 1);
    const auto = await createSession(stack.t, user, { title: 'Auto', subreddits: 'regen' });
    const custom = await createSession(stack.t, user, { title: 'Custom', subreddits: 'regen', thumbnail: 'https://cdn.example.test/c.png' });
    await waitFor('the first thumbnail', async () => (await stack.knex('sessions').where({ id: auto.id }).first()).thumbnail);
    const run = await runScriptFile('thumbnails-regenerate.ts', ['--user', user.user.id, '--wait', '--timeout', '60'], stack.env);
    expect(run.code, run.stdout + run.stderr).to.equal(0);
    expect(run.stdout).to.match(/1 session\(s\) selected/).and.to.match(new RegExp(`session ${auto.id} \\(generation 2\\): completed`));
    const rows = await stack.knex('sessions').whereIn('id', [auto.id, custom.id]).orderBy('id');
    expect(rows[0].thumbnail).to.match(/\/2\.webp$/);
    expect(rows[1].thumbnail).to.equal('https://cdn.example.test/c.png');
  });

  it('overview, outbox:status and /metrics give the exact backlog while Redis refuses writes (full, noeviction), and none once it takes them again', async () => {
    // The queues of user-triggered jobs (the maintenance queue runs on its own schedule).
    const jobQueues = ['media', 'thumbnails', 'snapshots'];
    type Overview = { queues: Record<string, Record<string, number>>; outbox: Record<string, unknown> & { recentErrors: Record<string, unknown>[] } };
    const overview = async (): Promise<Overview> => (await app.get('/api/admin/overview').set('Cookie', admin.cookie).expect(200)).body as Overview;
    const outboxStatus = async (): Promise<{ code: number | null; status: Record<string, unknown> & { recentErrors: Record<string, unknown>[] } }> => {
      const run = await runScriptFile('outbox-status.ts', ['--json'], stack.env);
      return { code: run.code, status: JSON.parse(run.stdout) };
    };
    await waitFor('no backlog from earlier tests', async () => (await overview()).outbox.backlog === 0);
    const before = await overview();
    const user = await registerUser(stack.t);
    await serveImages(stack.fixture, 'backlog', 1);

    // Redis full, as maxmemory with noeviction leaves it: it still answers, and refuses every write.
    const full = new Redis(redis.url);
    await full.config('SET', 'maxmemory', '1');
    let rows: { id: number; queue: string; job_name: string; created_at: Date }[];
    try {
      const auto = await createSession(stack.t, user, { title: 'Backlog auto', subreddits: 'backlog' });
      const custom = await createSession(stack.t, user, { title: 'Backlog custom', subreddits: 'backlog', thumbnail: 'https://cdn.example.test/b.png' });
      rows = (await stack.knex('job_outbox').whereRaw(`(payload->>'sessionId')::int IN (?, ?)`, [auto.id, custom.id]).orderBy('id')) as typeof rows;
      expect(rows.map((r) => `${r.queue}:${r.job_name}`)).to.deep.equal(['media:sync', 'thumbnails:generate', 'media:sync']);
      const ids = rows.map((r) => r.id);
      await waitFor('every row to have failed a dispatch', async () => (await stack.knex('job_outbox').whereIn('id', ids).whereNotNull('last_error').whereNull('dispatched_at')).length === 3);

      const newestFirst = [...rows].reverse().map((r) => ({ id: r.id, queue: r.queue, jobName: r.job_name }));
      const during = await overview();
      expect(during.outbox).to.deep.include({ backlog: 3, failing: 3, oldestUndispatchedAt: rows[0]!.created_at.toISOString() });
      expect(during.outbox.oldestAgeSeconds).to.be.above(0);
      expect(during.outbox.recentErrors.map(({ id, queue, jobName }) => ({ id, queue, jobName }))).to.deep.equal(newestFirst);
      for (const e of during.outbox.recentErrors) {
        expect(e.lastError).to.match(/^OOM command not allowed/);
        expect(e.attempts).to.be.at.least(1);
      }
      // Nothing reached a job queue.
      for (const queue of jobQueues) expect(during.queues[queue], queue).to.deep.equal(before.queues[queue]);
      const metrics = await scrape();
      expect(metrics.get('showrunner_outbox_backlog')).to.equal(3);
      expect(metrics.get('showrunner_outbox_oldest_age_seconds')).to.be.above(0);

      const { code, status } = await outboxStatus();
      expect(code, 'outbox:status exits 1 while rows fail to dispatch').to.equal(1);
      expect(status).to.deep.include({ backlog: 3, failing: 3, oldestUndispatchedAt: rows[0]!.created_at.toISOString() });
      expect(status.oldestAgeSeconds).to.be.above(0);
      expect(status.recentErrors.map(({ id, queue, jobName }) => ({ id, queue, jobName }))).to.deep.equal(newestFirst);
    } finally {
      await full.config('SET', 'maxmemory', '0');
      full.disconnect();
    }

    for (const r of rows) await waitFor(`job ${r.queue}:${r.id} to complete`, async () => (await stack.job(r.queue as 'media' | 'thumbnails', r.id))?.state === 'completed');
    const after = await overview();
    expect(after.outbox).to.deep.include({ backlog: 0, failing: 0, oldestUndispatchedAt: null, oldestAgeSeconds: null, recentErrors: [] });
    expect(after.queues.media!.completed).to.equal(before.queues.media!.completed! + 2);
    expect(after.queues.thumbnails!.completed).to.equal(before.queues.thumbnails!.completed! + 1);
    for (const queue of jobQueues) expect({ ...after.queues[queue], completed: 0 }, queue).to.deep.equal({ ...before.queues[queue], completed: 0 });
    const { code, status } = await outboxStatus();
    expect(code).to.equal(0);
    expect(status).to.deep.include({ backlog: 0, failing: 0, oldestAgeSeconds: null, recentErrors: [] });
  });
});
