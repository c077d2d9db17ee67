import { expect } from 'chai';
import { pino } from 'pino';
import supertest from 'supertest';
import { createApp } from '../server/app.js';
import { attemptsWithin, retryPolicyOf } from '../workers/queues/retry-policy.js';
import { retrySchedule } from './helpers/retry-schedule.js';
import { promote, registerUser } from './helpers/app.js';
import { createSession, outboxFor } from './helpers/flows.js';
import { type JobStack } from './helpers/job-stack.js';
import { forEachRedis } from './helpers/redis-kinds.js';
import { waitFor } from './helpers/wait.js';

/**
 * A job failing for a transient cause keeps retrying with growing, capped waits over the retry
 * horizon; a permanent failure fails on its first attempt. The waits are minutes long here and the
 * test promotes each delayed retry itself, so it reads every wait BullMQ chose without waiting for one.
 */
forEachRedis((redis) => describe(`jobs: retries over the horizon (worker process)${redis.suffix}`, function () {
  this.timeout(120_000);
  let stack: JobStack;

  before(async () => {
    stack = await redis.jobStack({ env: { JOB_BACKOFF_MS: '60000', JOB_MAX_BACKOFF_MS: '240000', JOB_RETRY_HORIZON_MS: '660000' } });
    await stack.startWorker();
  });
  after(async () => stack?.close());

  async function thumbnailJobFor(subreddit: string, status: number) {
    const user = await registerUser(stack.t);
    stack.fixture.route(`/media/${subreddit}.jpg`, (_req, res) => void res.writeHead(status).end('no'));
    stack.fixture.setListing([subreddit], [{ id: `${subreddit}1`, kind: 'image', path: `/media/${subreddit}.jpg` }]);
    const created = await createSession(stack.t, user, { title: subreddit, subreddits: subreddit });
    const row = (await outboxFor(stack.knex, created.id)).find((r) => r.queue === 'thumbnails')!;
    return `outbox-${row.id}`;
  }

  it('a source answering 503 is retried with doubling waits capped at JOB_MAX_BACKOFF_MS until the horizon, the next attempt visible on the dashboard', async () => {
    const policy = retryPolicyOf(stack.config);
    const queue = stack.producer.queues.thumbnails;
    const jobId = await thumbnailJobFor('outage', 503);
    const admin = await registerUser(stack.t);
    await promote(stack.t, admin);
    const dashboard = supertest(createApp({ config: stack.config, knex: stack.knex, logger: pino({ level: 'silent' }), queues: stack.producer, blobs: stack.blobs }).callback());

    const delays: number[] = [];
    for (;;) {
      const seen = await waitFor(`attempt ${delays.length + 1} to fail`, async () => {
        const state = await queue.getJobState(jobId);
        const job = await queue.getJob(jobId);
        if (state === 'failed') return { state, job: job! };
        return state === 'delayed' && job?.attemptsMade === delays.length + 1 ? { state, job } : undefined;
      });
      if (seen.state === 'failed') {
        expect(seen.job.attemptsMade).to.equal(attemptsWithin(policy));
        expect(seen.job.failedReason).to.match(/503/);
        break;
      }
      delays.push(seen.job.delay);
      const retry = (seen.job.progress as { retry: { nextAttemptAt: string; failedAttempt: number; attempts: number } }).retry;
      expect(retry).to.include({ failedAttempt: delays.length, attempts: attemptsWithin(policy) });
      if (delays.length === 1) {
        // What bull-board serves for the delayed job: its progress carries the next attempt's time.
        const api = await dashboard.get('/admin/queues/api/queues?activeQueue=thumbnails&status=delayed').set('Cookie', admin.cookie).expect(200);
        const listed = (api.body.queues as { name: string; jobs: { id: string; delay: number; progress: unknown }[] }[])
          .find((q) => q.name === 'thumbnails')!.jobs.find((j) => j.id === jobId);
        expect(listed?.delay).to.equal(policy.backoffMs);
        expect(listed?.progress).to.deep.include({ retry: { ...retry } });
        expect(Date.parse(retry.nextAttemptAt)).to.be.greaterThan(seen.job.processedOn!);
      }
      await seen.job.promote();
    }
    expect(delays).to.deep.equal(retrySchedule(policy));
    expect(delays).to.deep.equal([60_000, 120_000, 240_000, 240_000]);
  });

  it('a permanent failure (a 404 source) fails on its first attempt under the same long horizon', async () => {
    const jobId = await thumbnailJobFor('gone', 404);
    const job = await waitFor('the job to fail', async () => {
      const state = await stack.producer.queues.thumbnails.getJobState(jobId);
      return state === 'failed' ? stack.producer.queues.thumbnails.getJob(jobId) : undefined;
    });
    expect(job?.attemptsMade).to.equal(1);
  });
}));
