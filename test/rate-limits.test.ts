import http from 'node:http';
import { expect } from 'chai';
import { createTestApp, httpSessionCookie, registerUser, type TestApp } from './helpers/app.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { startRedisServer, type RedisServer } from './helpers/redis-server.js';
import { servedBy, startWebProcess, type WebProcess } from './helpers/web-process.js';
import { waitFor } from './helpers/wait.js';

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a connection of its own, so the web supervisor hands each to the next process. */
function send(web: WebProcess, method: string, path: string, headers: Record<string, string> = {}, json?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = json === undefined ? undefined : JSON.stringify(json);
    const req = http.request(
      `${web.baseUrl}${path}`,
      { method, agent: false, headers: { ...headers, connection: 'close', ...(payload ? { 'content-type': 'application/json' } : {}) } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Which process served each of these requests (by `X-Request-Id`), once every one has logged its line (in batches, up to 250 ms late). */
function pidsServing(web: WebProcess, requestIds: string[]): Promise<number[]> {
  return waitFor('the request lines', () => {
    const pids = requestIds.map((id) => servedBy(web, id));
    return pids.every((pid) => pid !== undefined) ? (pids as number[]) : undefined;
  }, { timeoutMs: 5_000 });
}

async function registerOn(web: WebProcess): Promise<string> {
  const email = `rl-${Math.random().toString(36).slice(2)}@example.test`;
  const res = await send(web, 'POST', '/api/auth/register', {}, { email, password: 'correct horse battery staple' });
  expect(res.status, res.body).to.equal(201);
  return httpSessionCookie(res.headers['set-cookie']);
}

describe('API rate limits (the reference: 100 / 15 min on /api/sessions*, /api/shared*, /api/community*)', function () {
  this.timeout(60_000);

  describe('two web processes, counters in Redis', () => {
    let redis: RedisServer;
    let stack: JobStack;
    let web: WebProcess | undefined;

    before(async () => {
      redis = await startRedisServer();
      stack = await startJobStack({ redisUrl: redis.url });
    });
    afterEach(async () => {
      await web?.stop();
      web = undefined;
    });
    after(async () => {
      await stack?.close();
      await redis?.destroy();
    });

    it('share one limit: request 11 of 10 is 429 whichever process takes it', async () => {
      web = await startWebProcess({ ...stack.env, WEB_CONCURRENCY: '2', API_RATE_LIMIT: '10' });
      const cookie = await registerOn(web);
      const remaining: string[] = [];
      for (let i = 0; i < 10; i++) {
        const res = await send(web, 'GET', '/api/sessions', { cookie, 'x-request-id': `shared-ok-${i}` });
        expect(res.status, res.body).to.equal(200);
        remaining.push(String(res.headers['x-ratelimit-remaining']));
      }
      // One counter: the remaining count goes down by one per request, whichever process answered…
      expect(remaining).to.deep.equal(['9', '8', '7', '6', '5', '4', '3', '2', '1', '0']);
      const served = await pidsServing(web, remaining.map((_, i) => `shared-ok-${i}`));
      expect(new Set(served).size, `the processes that served the ten: ${served.join(', ')}`).to.equal(2);
      // …and once it is spent, both processes refuse.
      for (let i = 0; i < 4; i++) {
        const refused = await send(web, 'GET', '/api/sessions', { cookie, 'x-request-id': `shared-refused-${i}` });
        expect(refused.status, refused.body).to.equal(429);
        expect(JSON.parse(refused.body)).to.include({ error: 'Too Many Requests', code: 'RATE_LIMITED' });
      }
      const refusedBy = await pidsServing(web, [0, 1, 2, 3].map((i) => `shared-refused-${i}`));
      expect(new Set(refusedBy), `the processes that refused: ${refusedBy.join(', ')}`).to.deep.equal(new Set(served));
    });

    it('with Redis down, requests are still served, under each process’s own limit; a PATCH needs only Postgres', async () => {
      web = await startWebProcess({ ...stack.env, WEB_CONCURRENCY: '2', API_RATE_LIMIT: '10' });
      const cookie = await registerOn(web);
      const created = await send(web, 'POST', '/api/sessions', { cookie }, { title: 'Before the outage', subreddits: 'pics', thumbnail: 'https://cdn.example.test/t.png' });
      expect(created.status, created.body).to.equal(201);
      const id = (JSON.parse(created.body) as { id: number }).id;
      await redis.stop();
      try {
        const patched = await send(web, 'PATCH', `/api/sessions/${id}`, { cookie, 'x-request-id': 'outage-patch' }, { title: 'During the outage' });
        expect(patched.status, patched.body).to.equal(200);
        expect(JSON.parse(patched.body)).to.include({ title: 'During the outage' });
        // Each process now counts alone, the PATCH included: each serves its first 10 and refuses the rest.
        const statuses: number[] = [];
        for (let i = 0; i < 24; i++) {
          const res = await send(web, 'GET', '/api/sessions', { cookie, 'x-request-id': `outage-${i}` });
          expect(res.headers['x-ratelimit-limit']).to.equal('10');
          statuses.push(res.status);
        }
        expect(statuses.slice(0, 9), 'the first requests are served').to.deep.equal(Array(9).fill(200));
        const [patchedBy, ...handledBy] = await pidsServing(web, ['outage-patch', ...statuses.map((_, i) => `outage-${i}`)]);
        const byProcess = new Map<number, number[]>();
        for (const [i, pid] of handledBy.entries()) byProcess.set(pid, [...(byProcess.get(pid) ?? []), statuses[i]!]);
        expect([...byProcess.keys()], 'both processes took requests').to.have.length(2);
        for (const [pid, seen] of byProcess) {
          const allowed = 10 - (pid === patchedBy ? 1 : 0);
          const expected = seen.map((_, i) => (i < allowed ? 200 : 429));
          expect(seen, `process ${pid}${pid === patchedBy ? ' (it served the PATCH)' : ''}: its own ${allowed} then 429s`).to.deep.equal(expected);
        }
        expect(statuses, 'some refused').to.include(429);
      } finally {
        await redis.start();
      }
    });
  });

  describe('headers, answers and keys (one process)', () => {
    const limited = (env: Record<string, string> = {}): TestApp => createTestApp({ env: { API_RATE_LIMIT: '5', API_RATE_LIMIT_WINDOW_SECONDS: '900', TRUST_PROXY: 'true', ...env } });

    it('every limited response carries X-RateLimit-Limit, -Remaining (decreasing) and -Reset (ISO 8601); then 429 {error, message, code, retryAfter} with Retry-After', async () => {
      const t = limited();
      const u = await registerUser(t);
      const started = Date.now();
      for (let i = 0; i < 5; i++) {
        const res = await t.http().get('/api/sessions').set('Cookie', u.cookie);
        expect(res.status).to.equal(200);
        expect(res.headers['x-ratelimit-limit']).to.equal('5');
        expect(res.headers['x-ratelimit-remaining']).to.equal(String(4 - i));
        const reset = res.headers['x-ratelimit-reset'] as string;
        expect(new Date(Date.parse(reset)).toISOString()).to.equal(reset);
        expect(Date.parse(reset)).to.be.greaterThan(started).and.at.most(Date.now() + 900_000);
      }
      const refused = await t.http().get('/api/community').set('Cookie', u.cookie);
      expect(refused.status).to.equal(429);
      expect(Object.keys(refused.body).sort()).to.deep.equal(['code', 'error', 'message', 'retryAfter']);
      expect(refused.body).to.include({ error: 'Too Many Requests', code: 'RATE_LIMITED' });
      expect(refused.body.retryAfter).to.be.a('number').that.is.above(0).and.at.most(900);
      expect(Number.isInteger(refused.body.retryAfter)).to.equal(true);
      expect(refused.headers['retry-after']).to.equal(String(refused.body.retryAfter));
      expect(refused.headers['x-ratelimit-remaining']).to.equal('0');
      // Paths outside the limit are not counted and carry no headers.
      const categories = await t.http().get('/api/categories').set('Cookie', u.cookie);
      expect(categories.status).to.equal(200);
      expect(categories.headers).to.not.have.property('x-ratelimit-limit');
    });

    it('counts a logged-in caller by user and an anonymous one by address (X-Forwarded-For under TRUST_PROXY)', async () => {
      const t = limited();
      const [a, b] = [await registerUser(t), await registerUser(t)];
      const ip = (n: number) => `198.51.100.${n}`;
      for (let i = 0; i < 5; i++) expect((await t.http().get('/api/sessions').set('Cookie', a.cookie).set('X-Forwarded-For', ip(1))).status).to.equal(200);
      // User a is spent, from any address; user b, from the same address, is not.
      expect((await t.http().get('/api/sessions').set('Cookie', a.cookie).set('X-Forwarded-For', ip(2))).status).to.equal(429);
      expect((await t.http().get('/api/sessions').set('Cookie', b.cookie).set('X-Forwarded-For', ip(1))).status).to.equal(200);
      // Anonymous callers (401: reads need a login) are counted by address.
      for (let i = 0; i < 5; i++) {
        const res = await t.http().get('/api/community').set('X-Forwarded-For', ip(3));
        expect(res.status).to.equal(401);
        expect(res.headers['x-ratelimit-remaining']).to.equal(String(4 - i));
      }
      expect((await t.http().get('/api/community').set('X-Forwarded-For', ip(3))).status).to.equal(429);
      expect((await t.http().get('/api/community').set('X-Forwarded-For', ip(4))).status).to.equal(401);
      expect((await t.http().get('/api/community').set('Cookie', b.cookie).set('X-Forwarded-For', ip(3))).status).to.equal(200);
    });

    it('API_RATE_LIMIT=0: no headers, never 429', async () => {
      const t = limited({ API_RATE_LIMIT: '0' });
      const u = await registerUser(t);
      for (let i = 0; i < 120; i++) {
        const res = await t.http().get('/api/sessions').set('Cookie', u.cookie);
        expect(res.status).to.equal(200);
        expect(res.headers).to.not.have.property('x-ratelimit-limit');
        expect(res.headers).to.not.have.property('x-ratelimit-remaining');
      }
    });

    it('the default configuration is the reference’s: 100 requests per 900 seconds', () => {
      const t = createTestApp({ env: { API_RATE_LIMIT: '', API_RATE_LIMIT_WINDOW_SECONDS: '' } });
      expect(t.config.apiRateLimit).to.deep.equal({ points: 100, windowSeconds: 900 });
    });
  });
});
