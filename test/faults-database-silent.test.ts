import { expect } from 'chai';
import { registerUser, type TestUser } from './helpers/app.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { createSession, patch, serveImages } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { notARetryable503, request, type Answer } from './helpers/raw-request.js';
import { startWebProcess } from './helpers/web-process.js';
import { waitFor } from './helpers/wait.js';

/** Short bounds, so that a silence a few times longer than them is the 20 s scaled down. */
const BOUNDS = { DATABASE_QUERY_TIMEOUT_MS: '1500', DATABASE_STATEMENT_TIMEOUT_MS: '1000', DATABASE_CONNECT_TIMEOUT_MS: '1000' };

/** `DATABASE_URL` with its host and port replaced by the proxy's. */
function throughProxy(databaseUrl: string, proxy: FaultProxy): string {
  const url = new URL(databaseUrl);
  url.host = `${proxy.host}:${proxy.port}`;
  return url.toString();
}

/**
 * PostgreSQL goes silent behind a TCP proxy (connections open then are never answered again, new
 * ones are held): every statement has a client-side deadline, the connection it used is destroyed,
 * and the pool refills once the network heals. A request answers 5xx during the silence (never
 * hangs) and 200 after it; a job's attempt fails and is retried, so no job is lost.
 */
describe('faults: PostgreSQL silent behind a proxy', function () {
  this.timeout(120_000);
  let stack: JobStack;
  let proxy: FaultProxy;
  let user: TestUser;

  before(async () => {
    stack = await startJobStack({ env: { JOB_BACKOFF_MS: '200', JOB_MAX_BACKOFF_MS: '1000', JOB_RETRY_HORIZON_MS: '120000' } });
    const target = new URL(stack.env.DATABASE_URL!);
    proxy = await startFaultProxy({ host: target.hostname, port: Number(target.port || 5432) });
    user = await registerUser(stack.t);
  });
  afterEach(() => proxy.pass());
  after(async () => {
    await proxy?.close();
    await stack?.close();
  });

  it('under a web process: requests answer 503 during the silence, none waits for the network, and 200 after it heals', async () => {
    const web = await startWebProcess({ ...stack.env, ...BOUNDS, DATABASE_URL: throughProxy(stack.env.DATABASE_URL!, proxy) });
    try {
      const session = await createSession(stack.t, user, { title: 'Silent', subreddits: 'pics' });
      // Warm: the web's pool holds open connections through the proxy, which the silence freezes.
      for (let i = 0; i < 3; i++) expect((await request(web.baseUrl, 'GET', `/api/sessions/${session.id}`, user.cookie)).status).to.equal(200);

      proxy.silent();
      const answers: Answer[] = [];
      const sent = [
        request(web.baseUrl, 'GET', `/api/sessions/${session.id}`, user.cookie),
        request(web.baseUrl, 'PATCH', `/api/sessions/${session.id}`, user.cookie, { title: 'During the silence' }),
        request(web.baseUrl, 'GET', '/api/sessions', user.cookie),
      ].map((p) => p.then((a) => void answers.push(a)));
      // Every one answers while PostgreSQL is still silent: nothing waits for the network to heal.
      await waitFor('the three requests to answer while PostgreSQL is silent', () => answers.length === 3, { timeoutMs: 30_000 });
      await Promise.all(sent);
      expect(proxy.mode().kind).to.equal('silent');
      const failures = () => web.output().split("\n").filter((l) => l.includes("request failed")).join("\n").slice(0, 3000);
      for (const a of answers) expect(notARetryable503(a), `${JSON.stringify(a.body)}\n${failures()}`).to.equal(null);
      // Still silent: a request now needs a new connection, which is held; it ends at the connect deadline.
      const later = await request(web.baseUrl, 'GET', `/api/sessions/${session.id}`, user.cookie);
      expect(notARetryable503(later), JSON.stringify(later)).to.equal(null);

      proxy.pass();
      await waitFor('a 200 after the heal', async () => (await request(web.baseUrl, 'GET', `/api/sessions/${session.id}`, user.cookie)).status === 200, { timeoutMs: 30_000 });
      const written = await request(web.baseUrl, 'PATCH', `/api/sessions/${session.id}`, user.cookie, { title: 'After the silence' });
      expect(written.status, JSON.stringify(written.body)).to.equal(200);
      expect((await stack.knex('sessions').where({ id: session.id }).first()).title).to.equal('After the silence');
      expect(web.output()).to.not.match(/"status":500/);
    } finally {
      await web.stop();
    }
  });

  it('under a worker: attempts stuck on the silence fail and retry, and after the heal every job completes once', async () => {
    await serveImages(stack.fixture, 'quietdb', 2, { width: 320, height: 240 });
    const worker = await stack.startWorker({ ...BOUNDS, DATABASE_URL: throughProxy(stack.env.DATABASE_URL!, proxy) });
    const sessions: number[] = [];
    for (let i = 0; i < 3; i++) sessions.push((await createSession(stack.t, user, { title: `Quiet ${i}`, subreddits: 'quietdb' })).id);
    // Warm: each session's first thumbnail is made, so the worker's pool holds connections to freeze.
    const thumbnailed = (id: number, generation: number) => async () => {
      const s = await stack.knex('sessions').where({ id }).first();
      return s.thumbnail_generation === generation && String(s.thumbnail ?? '').endsWith(`/thumbnails/sessions/${id}/${generation}.webp`);
    };
    for (const id of sessions) await waitFor(`session ${id}'s first thumbnail`, thumbnailed(id, 1));

    proxy.silent();
    const outboxIds: number[] = [];
    for (const id of sessions) {
      await patch(stack.t, user, id, { thumbnail: '' });
      outboxIds.push((await stack.knex('job_outbox').where({ queue: 'thumbnails' }).whereRaw(`(payload->>'sessionId')::int = ?`, [id]).max<{ max: number }[]>({ max: 'id' }))[0]!.max);
    }
    // Each job's attempt ends at its statement's deadline while PostgreSQL is still silent: it gives its slot back and retries.
    await waitFor(
      'every job to have failed an attempt while PostgreSQL is silent',
      async () => (await Promise.all(outboxIds.map((id) => stack.job('thumbnails', id)))).every((j) => (j?.stacktrace.length ?? 0) > 0 || (j?.attemptsMade ?? 0) > 0),
      { timeoutMs: 30_000 },
    );
    expect(proxy.mode().kind).to.equal('silent');
    const reasons = (await Promise.all(outboxIds.map((id) => stack.job('thumbnails', id)))).map((j) => j?.failedReason ?? '');
    for (const reason of reasons) expect(reason).to.match(/Query read timeout|Connection terminated|timeout/);

    proxy.pass();
    for (const [i, id] of sessions.entries()) {
      await waitFor(`session ${id}'s second thumbnail after the heal`, thumbnailed(id, 2), { timeoutMs: 60_000 });
      await waitFor(`job ${outboxIds[i]} completed`, async () => (await stack.job('thumbnails', outboxIds[i]!))?.state === 'completed');
      // Exactly once: the second generation's blob is the only one left.
      const blobs = await stack.blobs.list(stack.config.blobContainers.thumbnails, `thumbnails/sessions/${id}/`);
      expect(blobs.map((b) => b.name)).to.deep.equal([`thumbnails/sessions/${id}/2.webp`]);
    }
    expect(worker.hasExited()).to.equal(false);
  });
});
