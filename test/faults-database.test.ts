import { expect } from 'chai';
import { registerUser, type TestUser } from './helpers/app.js';
import { createSession } from './helpers/flows.js';
import { notARetryable503, request } from './helpers/raw-request.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { startWebProcess, type WebProcess } from './helpers/web-process.js';
import { waitFor } from './helpers/wait.js';

/**
 * The web process's Postgres connections are terminated (`pg_terminate_backend`) under load: the
 * requests that were using them answer 503 with a clear message, never a 500 and never half a
 * write, and the service recovers by itself.
 */
describe('faults: database connections terminated under load', function () {
  this.timeout(90_000);
  let stack: JobStack;
  let web: WebProcess;
  let user: TestUser;
  let database: string;

  before(async () => {
    stack = await startJobStack({ fastPath: false });
    web = await startWebProcess(stack.env);
    user = await registerUser(stack.t);
    database = new URL(stack.env.DATABASE_URL!).pathname.slice(1);
  });
  after(async () => {
    await web?.stop();
    await stack?.close();
  });

  /** Terminates every backend the web process holds (it names itself `showrunner-web`); returns how many. */
  async function terminateWebConnections(): Promise<number> {
    const result = await stack.knex.raw(
      `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE datname = ? AND application_name = 'showrunner-web' AND pid <> pg_backend_pid()`,
      [database],
    );
    return (result.rows as { done: boolean }[]).filter((r) => r.done).length;
  }

  /** Thumbnail generation and its outbox row, per session: equal counts mean no write was half done. */
  async function generations(sessionId: number): Promise<{ generation: number; outbox: number[] }> {
    const row = await stack.knex('sessions').where({ id: sessionId }).first('thumbnail_generation');
    const outbox = await stack.knex('job_outbox')
      .where({ queue: 'thumbnails', job_name: 'generate' })
      .whereRaw(`(payload->>'sessionId')::int = ?`, [sessionId])
      .orderBy('id')
      .pluck('payload');
    return { generation: row.thumbnail_generation as number, outbox: (outbox as { generation: number }[]).map((p) => p.generation) };
  }

  it('a request whose connection is terminated mid-transaction answers 503 with Retry-After and writes nothing', async () => {
    const session = await createSession(stack.t, user, { title: 'Locked', subreddits: 'pics' });
    const before = await generations(session.id);
    const beforeRow = await stack.knex('sessions').where({ id: session.id }).first();
    // Hold the row lock, so the PATCH is certainly inside its transaction when its backend goes.
    const trx = await stack.knex.transaction();
    try {
      await trx('sessions').where({ id: session.id }).forUpdate().first();
      const pending = request(web.baseUrl, 'PATCH', `/api/sessions/${session.id}`, user.cookie, { title: 'Never written', thumbnail: '' });
      await waitFor('the PATCH to wait for the row lock', async () => {
        const waiting = await stack.knex.raw(
          `SELECT 1 FROM pg_stat_activity WHERE datname = ? AND application_name = 'showrunner-web' AND wait_event_type = 'Lock'`,
          [database],
        );
        return waiting.rows.length > 0;
      });
      expect(await terminateWebConnections()).to.be.greaterThan(0);
      const answer = await pending;
      expect(notARetryable503(answer), JSON.stringify(answer)).to.equal(null);
    } finally {
      await trx.rollback();
    }
    const afterRow = await stack.knex('sessions').where({ id: session.id }).first();
    expect(afterRow.title).to.equal('Locked');
    expect(afterRow.version).to.equal(beforeRow.version);
    expect(await generations(session.id)).to.deep.equal(before);
    // The very next request is served: the pool replaced the dead connection on its own.
    const next = await request(web.baseUrl, 'PATCH', `/api/sessions/${session.id}`, user.cookie, { title: 'Written' });
    expect(next.status, JSON.stringify(next.body)).to.equal(200);
  });

  it('terminations under load: only 200 or 503 with Retry-After, every write whole, and the service recovers by itself', async () => {
    const lanes = 8;
    const sessions: number[] = [];
    for (let i = 0; i < lanes; i++) sessions.push((await createSession(stack.t, user, { title: `Load ${i}`, subreddits: 'pics' })).id);
    const start = await Promise.all(sessions.map((id) => generations(id)));
    const statuses = new Map<number, number>();
    const unexpected: string[] = [];
    let ok = 0;
    let stop = false;

    const load = sessions.map(async (id, lane) => {
      for (let n = 0; !stop; n++) {
        // Writes that each need a job (a new thumbnail generation and its outbox row), and reads.
        const answer =
          n % 3 === 2
            ? await request(web.baseUrl, 'GET', `/api/sessions/${id}`, user.cookie)
            : await request(web.baseUrl, 'PATCH', `/api/sessions/${id}`, user.cookie, { title: `Load ${lane} #${n}`, thumbnail: '' });
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        const why = answer.status === 200 ? null : notARetryable503(answer);
        if (answer.status === 200) ok += 1;
        else if (why !== null) unexpected.push(`${why}: ${answer.status} retry-after=${answer.headers['retry-after']} ${JSON.stringify(answer.body)}`);
      }
    });
    let terminated = 0;
    for (let round = 0; round < 6; round++) {
      const target = ok + 25;
      await waitFor(`25 more successful requests before termination ${round + 1}`, () => ok >= target, { timeoutMs: 30_000 });
      terminated += await terminateWebConnections();
    }
    // Recovered: a good run of successes after the last termination, without anyone restarting anything.
    const target = ok + 50;
    await waitFor('50 successful requests after the last termination', () => ok >= target, { timeoutMs: 30_000 });
    stop = true;
    await Promise.all(load);

    const summary = JSON.stringify(Object.fromEntries(statuses));
    expect(terminated, summary).to.be.greaterThan(0);
    const failedLogs = web.output().split('\n').filter((l) => l.includes('"request failed"') && !l.includes('"status":503'));
    expect(unexpected, `${summary}\n${unexpected.slice(0, 5).join('\n')}\n${failedLogs.slice(0, 3).join('\n')}`).to.deep.equal([]);
    expect(statuses.get(503) ?? 0, `some request was cut off (${summary})`).to.be.greaterThan(0);
    // Whole writes only: each generation step has its outbox row and each row its generation step.
    for (const [i, id] of sessions.entries()) {
      const now = await generations(id);
      const steps = now.generation - start[i]!.generation;
      expect(now.outbox.slice(start[i]!.outbox.length), `session ${id}`).to.deep.equal(Array.from({ length: steps }, (_, k) => start[i]!.generation + k + 1));
    }
    expect(web.hasExited()).to.equal(false);
    expect(web.output()).to.not.match(/"status":500/);
  });
});
