import { expect } from 'chai';
import { pino } from 'pino';
import type { Config } from '../config.js';
import type { Knex } from '../db/knex.js';
import { WorkerMetrics } from '../workers/metrics.js';
import { runMaintenanceTask } from '../workers/processors/maintenance.js';
import { MAINTENANCE_TASKS } from '../workers/queues/contracts.js';
import { maintenanceSchedulerId } from '../workers/queues/maintenance-schedule.js';
import { createTestApp, registerUser, testConfig, type TestApp } from './helpers/app.js';
import { ownTestDatabase } from './helpers/database.js';
import { createSession } from './helpers/flows.js';
import { startJobStack } from './helpers/job-stack.js';
import { waitFor } from './helpers/wait.js';

const OLD = 100_000;
const RECENT = 1_000;
const UNDISPATCHED = 300;
const UNFINISHED = 300;

/**
 * Finished rows (old and recent), and unless `finishedOnly`, old rows that were never dispatched or
 * never finished (left out beside a running worker, whose relay and reconciler would send them).
 */
async function seedOutbox(knex: Knex, old: number, finishedOnly = false): Promise<void> {
  const row = (n: number, created: string, dispatched: string | null, finished: string | null) =>
    knex.raw(
      `INSERT INTO job_outbox (queue, job_name, payload, created_at, dispatched_at, finished_at, final_state)
       SELECT 'media', 'sync', jsonb_build_object('sessionId', g), now() - ?::interval, now() - ?::interval, now() - ?::interval,
              CASE WHEN ?::text IS NULL THEN NULL ELSE 'completed' END
       FROM generate_series(1, ?) g`,
      [created, dispatched, finished, finished, n],
    );
  await row(old, '40 days', '40 days', '30 days');
  await row(RECENT, '2 days', '2 days', '1 day');
  if (finishedOnly) return;
  await row(UNDISPATCHED, '40 days', null, null);
  await row(UNFINISHED, '40 days', '40 days', null);
}

async function outboxCounts(knex: Knex): Promise<Record<string, number>> {
  const [counts] = await knex('job_outbox').select(
    knex.raw(`count(*) FILTER (WHERE finished_at < now() - interval '7 days')::int AS old`),
    knex.raw(`count(*) FILTER (WHERE finished_at >= now() - interval '7 days')::int AS recent`),
    knex.raw(`count(*) FILTER (WHERE dispatched_at IS NULL)::int AS undispatched`),
    knex.raw(`count(*) FILTER (WHERE dispatched_at IS NOT NULL AND finished_at IS NULL)::int AS unfinished`),
  );
  return counts as Record<string, number>;
}

describe('maintenance: scheduled housekeeping', function () {
  this.timeout(180_000);

  describe('the tasks, on a database of their own', () => {
    const db = ownTestDatabase({ poolMax: 12, applicationName: 'showrunner-test-maintenance' });
    let t: TestApp;
    let config: Config;
    const metrics = new WorkerMetrics();
    const deps = () => ({ knex: db.knex, config, logger: pino({ level: 'silent' }), metrics, blobs: undefined as never });

    before(async () => {
      const env = { DATABASE_URL: db.url, MAINTENANCE_BATCH_SIZE: '5000', OUTBOX_RETENTION_DAYS: '7' };
      config = testConfig(env);
      t = createTestApp({ env, knex: db.knex });
    });

    it('deletes finished outbox rows past the retention in batches, keeps recent, undispatched and unfinished rows, while PATCHes keep answering', async () => {
      await seedOutbox(db.knex, OLD);
      const user = await registerUser(t);
      const session = await createSession(t, user, { title: 'Busy', subreddits: 'pics' });
      const before = await outboxCounts(db.knex);
      // Every DELETE statement on job_outbox, as the database ran it, with how many rows it took.
      await db.knex.raw(`
        CREATE TABLE test_outbox_deletes (id serial PRIMARY KEY, deleted int NOT NULL);
        CREATE FUNCTION test_log_outbox_delete() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN INSERT INTO test_outbox_deletes (deleted) SELECT count(*) FROM gone; RETURN NULL; END $$;
        CREATE TRIGGER test_outbox_deletes AFTER DELETE ON job_outbox REFERENCING OLD TABLE AS gone
          FOR EACH STATEMENT EXECUTE FUNCTION test_log_outbox_delete();
      `);

      const patches = (async () => {
        const statuses: number[] = [];
        for (let i = 0; i < 20; i++) {
          const res = await t.http().patch(`/api/sessions/${session.id}`).set('Cookie', user.cookie).send({ title: `Busy ${i}` });
          statuses.push(res.status);
        }
        return statuses;
      })();
      const [outcome, statuses] = await Promise.all([runMaintenanceTask(deps(), 'outbox-retention'), patches]);

      expect(statuses).to.deep.equal(statuses.map(() => 200));
      expect(outcome).to.deep.include({ task: 'outbox-retention', deleted: OLD, interrupted: false });
      // Batches of MAINTENANCE_BATCH_SIZE (5,000), each its own statement: 100,000 rows are 20 full ones.
      const statements = (await db.knex('test_outbox_deletes').orderBy('id').pluck('deleted')) as number[];
      await db.knex.raw('DROP TRIGGER test_outbox_deletes ON job_outbox; DROP FUNCTION test_log_outbox_delete(); DROP TABLE test_outbox_deletes');
      expect(statements.filter((n) => n > 0), 'the DELETEs that removed rows').to.deep.equal(Array(OLD / 5_000).fill(5_000));
      expect(outcome.batches, 'the batches it reports are the statements it ran').to.equal(statements.length);
      expect(await outboxCounts(db.knex)).to.deep.equal({ old: 0, recent: RECENT, undispatched: before.undispatched, unfinished: UNFINISHED });
      expect(before.undispatched).to.be.at.least(UNDISPATCHED);
      const text = await metrics.registry.metrics();
      expect(text).to.match(new RegExp(`showrunner_maintenance_deleted_total\\{task="outbox-retention"\\} ${OLD}\\b`));
    });

    it('a stop between batches ends the run: interrupted, with what is left kept for the next run', async () => {
      await seedOutbox(db.knex, OLD, true);
      const before = await outboxCounts(db.knex);
      const stop = new AbortController();
      const small = { ...config, maintenance: { ...config.maintenance, batchSize: 1_000 } };
      const run = runMaintenanceTask({ ...deps(), config: small, signal: stop.signal }, 'outbox-retention');
      await waitFor('a first batch deleted', async () => (await outboxCounts(db.knex)).old! < before.old!, { intervalMs: 5 });
      stop.abort();
      const outcome = await run;
      expect(outcome).to.deep.include({ task: 'outbox-retention', interrupted: true });
      expect(outcome.deleted).to.be.above(0).and.below(before.old!);
      expect(await outboxCounts(db.knex)).to.deep.include({ old: before.old! - outcome.deleted, recent: before.recent });
      // The next run carries on where this one stopped.
      expect(await runMaintenanceTask({ ...deps(), config: small }, 'outbox-retention')).to.deep.include({ deleted: before.old! - outcome.deleted, interrupted: false });
    });

    it('deletes expired logins and closed rate-limit windows, keeps live ones', async () => {
      const user = await registerUser(t);
      await db.knex('http_sessions').insert([
        { id_hash: 'expired-1', data: {}, user_id: user.user.id, expires_at: db.knex.raw(`now() - interval '1 minute'`) },
        { id_hash: 'expired-2', data: {}, user_id: null, expires_at: db.knex.raw(`now() - interval '3 days'`) },
      ]);
      // Rows as rate-limiter-flexible writes them: points, and when the window ends (epoch ms).
      await db.knex('rate_limits').insert([
        { key: 'login-ip:closed-1', points: 5, expire: Date.now() - 1_000 },
        { key: 'register-ip:closed-2', points: 1, expire: Date.now() - 2 * 86_400_000 },
        { key: 'login-ip:open-1', points: 3, expire: Date.now() + config.loginRateLimit.windowMs },
      ]);
      const live = await db.knex('http_sessions').where('expires_at', '>', db.knex.fn.now()).pluck('id_hash');
      expect(live, 'the registered user is logged in').to.not.be.empty;

      expect(await runMaintenanceTask(deps(), 'expired-logins')).to.deep.include({ deleted: 2 });
      expect(await runMaintenanceTask(deps(), 'closed-login-windows')).to.deep.include({ deleted: 2 });
      expect((await db.knex('http_sessions').pluck('id_hash')).sort()).to.deep.equal([...live].sort());
      expect(await db.knex('rate_limits').pluck('key')).to.deep.equal(['login-ip:open-1']);
      await t.http().get('/api/auth/user').set('Cookie', user.cookie).expect(200);
    });
  });

  it('worker processes upsert one scheduler per task, however many start, and a scheduled run removes old outbox rows', async () => {
    const stack = await startJobStack({ env: { MAINTENANCE_INTERVAL_MS: '500' } });
    try {
      await seedOutbox(stack.knex, 2_000, true);
      await stack.startWorker();
      await waitFor('a scheduled run to delete the old finished rows', async () => (await outboxCounts(stack.knex)).old === 0, { timeoutMs: 60_000 });
      expect(await outboxCounts(stack.knex)).to.deep.include({ recent: RECENT });

      // A second worker with another interval: its upsert changes the same schedulers, adds none.
      await stack.startWorker({ MAINTENANCE_INTERVAL_MS: '600000' });
      const queue = stack.producer.queues.maintenance;
      await waitFor('the second worker to upsert the schedulers', async () => (await queue.getJobSchedulers()).every((s) => s.every === 600_000));
      expect(await queue.getJobSchedulersCount()).to.equal(MAINTENANCE_TASKS.length);
      expect((await queue.getJobSchedulers()).map((s) => s.key).sort()).to.deep.equal(MAINTENANCE_TASKS.map(maintenanceSchedulerId).sort());
    } finally {
      await stack.close();
    }
  });
});
