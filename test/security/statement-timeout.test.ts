import { expect } from 'chai';
import { registerUser, type TestUser } from '../helpers/app.js';
import { createSession } from '../helpers/flows.js';
import { startJobStack, type JobStack } from '../helpers/job-stack.js';
import { notARetryable503, request } from '../helpers/raw-request.js';
import { startWebProcess, type WebProcess } from '../helpers/web-process.js';

/**
 * Every web database connection runs with `statement_timeout` (`DATABASE_STATEMENT_TIMEOUT_MS`): a
 * statement that overruns it is cancelled by PostgreSQL and the request answers 503 with the usual
 * envelope, instead of holding its connection and its client for as long as the statement takes.
 */
describe('security: a statement past DATABASE_STATEMENT_TIMEOUT_MS is a 503, never a hang', function () {
  this.timeout(60_000);
  let stack: JobStack;
  let web: WebProcess;
  let user: TestUser;

  before(async () => {
    stack = await startJobStack({ fastPath: false });
    // The client-side deadline far above the statement's: what ends the statement is PostgreSQL's timeout.
    web = await startWebProcess({ ...stack.env, DATABASE_STATEMENT_TIMEOUT_MS: '500', DATABASE_QUERY_TIMEOUT_MS: '30000' });
    user = await registerUser(stack.t);
  });
  after(async () => {
    await web?.stop();
    await stack?.close();
  });

  it('a PATCH whose UPDATE waits on a row lock another connection holds answers 503 {error, message, code}, writes nothing, and the next one succeeds', async () => {
    const session = await createSession(stack.t, user, { title: 'Before', subreddits: 'pics' });
    const before = await stack.knex('sessions').where({ id: session.id }).first();
    const lock = await stack.knex.transaction();
    let answer;
    let timer: NodeJS.Timeout | undefined;
    try {
      // Another connection holds the row, and keeps holding it until the PATCH has answered.
      await lock('sessions').where({ id: session.id }).forUpdate().first();
      answer = await Promise.race([
        request(web.baseUrl, 'PATCH', `/api/sessions/${session.id}`, user.cookie, { title: 'Never written' }),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the PATCH is still waiting on the lock after 20 s')), 20_000))),
      ]);
    } finally {
      clearTimeout(timer);
      await lock.rollback();
    }
    expect(notARetryable503(answer), JSON.stringify(answer)).to.equal(null);
    expect(Object.keys(answer.body).sort()).to.deep.equal(['code', 'error', 'message']);
    const after = await stack.knex('sessions').where({ id: session.id }).first();
    expect(after.title).to.equal('Before');
    expect(after.version).to.equal(before.version);
    // The connection survived the cancelled statement: the same process serves the next request.
    const next = await request(web.baseUrl, 'PATCH', `/api/sessions/${session.id}`, user.cookie, { title: 'Written' });
    expect(next.status, JSON.stringify(next.body)).to.equal(200);
    expect(web.output()).to.not.match(/"status":500/);
  });
});
