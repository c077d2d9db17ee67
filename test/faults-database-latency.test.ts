import { expect } from 'chai';
import { registerUser } from './helpers/app.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { createSession } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { request } from './helpers/raw-request.js';
import { startWebProcess } from './helpers/web-process.js';

/**
 * 200 ms added to every packet between a web process and PostgreSQL, with the default bounds: the
 * deadlines are per statement, not per request, so a slow network makes PATCHes slow but never
 * wrong. Concurrent PATCHes of the same sessions all apply, once each, with their jobs. (How slow is
 * the bench's business: `npm run bench -- --only dblatency` reports their p99.)
 */
describe('faults: 200 ms of latency between the web and PostgreSQL', function () {
  this.timeout(180_000);
  let stack: JobStack;
  let proxy: FaultProxy;

  before(async () => {
    stack = await startJobStack({ fastPath: false });
    const target = new URL(stack.env.DATABASE_URL!);
    proxy = await startFaultProxy({ host: target.hostname, port: Number(target.port || 5432) });
  });
  after(async () => {
    await proxy?.close();
    await stack?.close();
  });

  it('concurrent PATCHes all answer 200 and apply once each, with one outbox row per new thumbnail', async () => {
    const via = new URL(stack.env.DATABASE_URL!);
    via.host = `${proxy.host}:${proxy.port}`;
    const web = await startWebProcess({ ...stack.env, DATABASE_URL: via.toString() });
    try {
      const user = await registerUser(stack.t);
      const sessions: number[] = [];
      for (let i = 0; i < 2; i++) sessions.push((await createSession(stack.t, user, { title: `Slow ${i}`, subreddits: 'pics' })).id);
      const before = await stack.knex('sessions').whereIn('id', sessions).orderBy('id');
      proxy.latency(200);
      const rounds = 4;
      // Two lanes per session, each alternating a field edit and a thumbnail regeneration.
      const answers = await Promise.all(
        sessions.flatMap((id) =>
          [0, 1].map(async (lane) => {
            const statuses: number[] = [];
            for (let n = 0; n < rounds; n++) {
              const body = n % 2 === 0 ? { title: `Lane ${lane} #${n}` } : { thumbnail: '' };
              statuses.push((await request(web.baseUrl, 'PATCH', `/api/sessions/${id}`, user.cookie, body)).status);
            }
            return statuses;
          }),
        ),
      );
      proxy.pass();
      expect(answers.flat()).to.deep.equal(Array(sessions.length * 2 * rounds).fill(200));
      for (const [i, id] of sessions.entries()) {
        const row = await stack.knex('sessions').where({ id }).first();
        // Every PATCH applied once: the version counts them, the generation counts the regenerations.
        expect(row.version, `session ${id}`).to.equal(before[i].version + 2 * rounds);
        expect(row.thumbnail_generation, `session ${id}`).to.equal(before[i].thumbnail_generation + rounds);
        const generations = (await stack.knex('job_outbox').where({ queue: 'thumbnails', job_name: 'generate' }).whereRaw(`(payload->>'sessionId')::int = ?`, [id]).orderBy('id').pluck('payload')) as { generation: number }[];
        expect(generations.map((p) => p.generation).slice(-rounds), `session ${id}`).to.deep.equal(Array.from({ length: rounds }, (_, k) => before[i].thumbnail_generation + k + 1));
      }
      expect(web.output()).to.not.match(/"status":5\d\d/);
    } finally {
      await web.stop();
    }
  });
});
