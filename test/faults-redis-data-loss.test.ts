import { expect } from 'chai';
import { createKnex } from '../db/knex.js';
import { dropDatabase, ensureDatabase } from '../db/database.js';
import { migrateLatest } from '../db/migrate.js';
import type { OutboxRow } from '../db/types.js';
import { registerUser } from './helpers/app.js';
import { createSession, patch } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { POSTGRES_STORE_ENV, flushAll, forEachRedis, type OwnedRedis } from './helpers/redis-kinds.js';
import { QUEUE_NAMES } from '../workers/queues/contracts.js';
import { freePort } from './helpers/redis-server.js';
import { maxOutboxId } from './helpers/session-state.js';
import { expectDurableSnapshotBlobs } from './helpers/durable-blobs.js';
import { waitFor } from './helpers/wait.js';
import type { WorkerProcess } from './helpers/worker-process.js';

/** Short enough for a test, above the job lock, so a job a live worker holds is never taken for lost. */
const RECONCILE_ENV = { OUTBOX_RECONCILE_AFTER_MS: '3000', OUTBOX_RECONCILE_INTERVAL_MS: '300', JOB_LOCK_DURATION_MS: '1500' };
const IMAGES_PER_LISTING = 2;

/**
 * A subreddit whose images are held back until `open()`: jobs that download them stay active, so a
 * loss can be made while some jobs run and the rest wait.
 */
async function heldListing(stack: JobStack, subreddit: string): Promise<{ open(): void }> {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const posts = [];
  for (let i = 0; i < IMAGES_PER_LISTING; i++) {
    const path = `/media/${subreddit}-${i}.jpg`;
    const body = await stack.fixture.image(path, { width: 320, height: 240, format: 'jpeg' });
    stack.fixture.route(path, (_req, res) => {
      void opened.then(() => res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length }).end(body));
    });
    posts.push({ id: `${subreddit}${i}`, kind: 'image' as const, path });
  }
  stack.fixture.setListing([subreddit], posts);
  return { open };
}

/** Sessions of one user on a held listing, each shared (a snapshot job) and given new thumbnails, PATCH by PATCH. */
async function patchSessions(stack: JobStack, subreddit: string, sessions: number, patchesEach: number): Promise<number[]> {
  const user = await registerUser(stack.t);
  const ids: number[] = [];
  for (let i = 0; i < sessions; i++) ids.push((await createSession(stack.t, user, { title: `${subreddit} ${i}`, subreddits: subreddit })).id);
  const bodies = (k: number) => (k === 0 ? { shareToCommunity: true } : { thumbnail: '' });
  for (let k = 0; k < patchesEach; k++) {
    const queue = [...ids];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) await patch(stack.t, user, id, bodies(k));
      }),
    );
  }
  return ids;
}

async function outboxRowsAfter(stack: JobStack, mark: number): Promise<OutboxRow[]> {
  return stack.knex<OutboxRow>('job_outbox').where('id', '>', mark).orderBy('id');
}

const allDispatchedAfter = async (stack: JobStack, mark: number): Promise<boolean> =>
  (await outboxRowsAfter(stack, mark)).every((r) => r.dispatched_at !== null);

async function activeJobs(stack: JobStack): Promise<number> {
  const counts = await Promise.all(['thumbnails', 'snapshots'].map((q) => stack.producer.queues[q as 'thumbnails'].getJobCountByTypes('active')));
  return counts.reduce((a, b) => a + b, 0);
}

/** Waits until every outbox row after `mark` records its job finished; returns the rows. */
async function allFinished(stack: JobStack, mark: number): Promise<OutboxRow[]> {
  return waitFor(
    'every outbox row to record its job finished',
    async () => {
      const rows = await outboxRowsAfter(stack, mark);
      return rows.every((r) => r.finished_at !== null) ? rows : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 100 },
  );
}

/** Each session: its current generation's thumbnail, one blob; its snapshot ready with exactly its blobs. */
async function expectEffectsOnce(stack: JobStack, sessions: number[]): Promise<void> {
  const thumbnails = stack.config.blobContainers.thumbnails;
  for (const id of sessions) {
    const session = await stack.knex('sessions').where({ id }).first();
    const name = `thumbnails/sessions/${id}/${session.thumbnail_generation}.webp`;
    expect(session.thumbnail, `session ${id}`).to.equal(stack.blobs.url(thumbnails, name));
    expect((await stack.blobs.list(thumbnails, `thumbnails/sessions/${id}/`)).map((b) => b.name), `session ${id}`).to.deep.equal([name]);
    const snapshots = await stack.knex('community_snapshots').where({ session_id: id });
    expect(snapshots, `session ${id}: one snapshot`).to.have.length(1);
    const snapshot = snapshots[0];
    expect(snapshot.status, `snapshot ${snapshot.id}: ${snapshot.last_error}`).to.equal('ready');
    const media = await stack.knex('community_snapshot_media').where({ snapshot_id: snapshot.id });
    expect(media, `snapshot ${snapshot.id}: one row per item`).to.have.length(IMAGES_PER_LISTING);
    await expectDurableSnapshotBlobs(stack, snapshot);
  }
}

async function stopWorkers(stack: JobStack): Promise<void> {
  await Promise.all(stack.workers.splice(0).map((w) => w.stop()));
}

async function dbNow(stack: JobStack): Promise<Date> {
  return (await stack.knex.raw('SELECT clock_timestamp() AS t')).rows[0].t as Date;
}

/** The worker's own counter of reconciled rows with this outcome. */
async function reconciled(port: number, outcome: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`showrunner_outbox_reconciled_total{outcome="${outcome}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/**
 * Redis loses jobs it had acknowledged (FLUSHALL; a restart without persistence) while jobs wait and
 * run. Postgres is the system of record: the reconciler finds the rows whose jobs Redis no longer
 * has and dispatches them again under the same id, and every effect still happens exactly once.
 */
forEachRedis((kind) => describe(`faults: Redis loses the jobs it acknowledged${kind.suffix}`, function () {
  this.timeout(120_000);
  let redis: OwnedRedis;
  let stack: JobStack;

  before(async () => {
    redis = await kind.startOwn();
    stack = await startJobStack({ redisUrl: redis.url, env: { ...RECONCILE_ENV, SNAPSHOT_COPY_PARALLELISM: '2' } });
  });
  afterEach(async () => stopWorkers(stack));
  after(async () => {
    await stack?.close();
    await redis?.destroy();
  });

  /** 200 PATCHes, the loss once every row is dispatched and some jobs run, then every effect once. */
  async function survivesLoss(label: string, lose: () => Promise<void>): Promise<void> {
    const mark = await maxOutboxId(stack.knex);
    const held = await heldListing(stack, label);
    await stack.startWorker();
    const sessions = await patchSessions(stack, label, 50, 4);
    await waitFor('every row dispatched and some jobs running', async () => (await allDispatchedAfter(stack, mark)) && (await activeJobs(stack)) > 0, {
      timeoutMs: 30_000,
    });
    const lostAt = await dbNow(stack);
    await lose();
    held.open();

    const rows = await allFinished(stack, mark);
    const lastEffect = rows.reduce((t, r) => Math.max(t, r.finished_at!.getTime()), 0);
    console.log(`      ${label}: ${rows.length} rows; ${rows.filter((r) => r.redispatches > 0).length} dispatched again; loss → last effect ${lastEffect - lostAt.getTime()} ms`);
    expect(rows.filter((r) => r.final_state !== 'completed').map((r) => [r.id, r.final_state, r.last_error])).to.deep.equal([]);
    expect(rows.some((r) => r.redispatches > 0), 'the loss was real: some jobs were dispatched again').to.equal(true);
    expect(rows.filter((r) => r.redispatches > 1).map((r) => r.id), 'lost once, dispatched again once').to.deep.equal([]);
    await expectEffectsOnce(stack, sessions);
  }

  it('FLUSHALL while jobs wait and run: every lost job runs again, every effect exactly once', async () => {
    await survivesLoss('flushall', async () => {
      await flushAll(stack.producer.redis);
    });
  });

  it('Redis restarted without persistence while jobs wait and run: every lost job runs again, every effect exactly once', async () => {
    await survivesLoss('restart', async () => {
      await redis.stop();
      await redis.start();
    });
  });

  it('two worker processes reconciling at once dispatch each lost job again exactly once', async () => {
    const mark = await maxOutboxId(stack.knex);
    const held = await heldListing(stack, 'twoworkers');
    held.open();
    // No worker yet: every job waits in Redis, and all of them are lost.
    const sessions = await patchSessions(stack, 'twoworkers', 15, 2);
    await waitFor('every row dispatched', () => allDispatchedAfter(stack, mark));
    await flushAll(stack.producer.redis);
    await Promise.all([stack.startWorker(), stack.startWorker()]);

    const rows = await allFinished(stack, mark);
    expect(rows.filter((r) => r.redispatches !== 1).map((r) => [r.id, r.redispatches])).to.deep.equal([]);
    expect(rows.every((r) => r.final_state === 'completed')).to.equal(true);
    await expectEffectsOnce(stack, sessions);
  });

  it('a job kept active longer than the reconcile age is not dispatched a second time', async () => {
    const mark = await maxOutboxId(stack.knex);
    const held = await heldListing(stack, 'slowhost');
    const port = await freePort();
    await stack.startWorker({ WORKER_METRICS_PORT: String(port) });
    const sessions = await patchSessions(stack, 'slowhost', 1, 1);
    await waitFor('a job to be running', async () => (await activeJobs(stack)) > 0);
    // The download is held until a reconcile pass has looked at a running job past the reconcile age.
    await waitFor('the reconciler to leave a running job alone', async () => (await reconciled(port, 'in-redis')) > 0, { timeoutMs: 30_000 });
    held.open();

    const rows = await allFinished(stack, mark);
    expect(rows.map((r) => [r.id, r.redispatches, r.final_state])).to.deep.equal(rows.map((r) => [r.id, 0, 'completed']));
    expect(await reconciled(port, 'redispatched')).to.equal(0);
    await expectEffectsOnce(stack, sessions);
  });
}));

/**
 * Rows dispatched before the completion record existed have no record: the upgrade marks them
 * finished, so the reconciler's first pass does not run history again.
 */
describe('upgrade: rows dispatched before the completion record', function () {
  this.timeout(60_000);
  let stack: JobStack;
  let url: string;
  let worker: WorkerProcess | undefined;

  before(async () => {
    stack = await startJobStack({ env: RECONCILE_ENV });
    const u = new URL(stack.env.DATABASE_URL!);
    u.pathname = `${u.pathname}_upgrade`;
    url = u.toString();
    await ensureDatabase(url, { recreate: true });
  });
  after(async () => {
    await worker?.stop();
    await stack?.close();
    if (url) await dropDatabase(url);
  });

  it('are not dispatched again; a row not yet dispatched still runs once', async () => {
    const knex = createKnex({ databaseUrl: url, poolMax: 2 });
    try {
      // The schema as the previous release left it.
      for (;;) {
        const [, pending] = (await knex.migrate.list()) as [unknown[], { name: string }[]];
        if (pending[0]?.name === '20261201000200_add_job_outbox_completion') break;
        await knex.migrate.up();
      }
      const purge = (sessionId: number) => ({ queue: 'thumbnails', job_name: 'purge', payload: { sessionId } });
      const old = await knex('job_outbox')
        .insert([1, 2, 3].map((n) => ({ ...purge(900_000 + n), dispatched_at: knex.raw(`now() - interval '1 hour'`) })))
        .returning('id');
      const [undispatched] = await knex('job_outbox').insert(purge(900_010)).returning('id');
      await migrateLatest(knex);
      // After the upgrade: a dispatched row without a record, whose job Redis does not have, so a
      // reconcile pass is seen to happen (it runs this one again).
      const [lost] = await knex('job_outbox').insert({ ...purge(900_020), dispatched_at: knex.raw(`now() - interval '1 hour'`) }).returning('id');

      worker = await stack.startWorker({ DATABASE_URL: url });
      await waitFor('the reconciler to run the lost row and the relay the undispatched one', async () => {
        const rows = await knex<OutboxRow>('job_outbox').whereIn('id', [lost.id, undispatched.id]);
        return rows.length === 2 && rows.every((r) => r.final_state === 'completed');
      });

      const oldRows = await knex<OutboxRow>('job_outbox').whereIn('id', old.map((r: { id: number }) => r.id)).orderBy('id');
      for (const row of oldRows) {
        expect([row.final_state, row.redispatches, row.finished_at?.getTime()], `row ${row.id}`).to.deep.equal(['completed', 0, row.dispatched_at!.getTime()]);
        expect(await stack.job('thumbnails', row.id), `row ${row.id} has no job in Redis`).to.equal(undefined);
      }
      const after = await knex<OutboxRow>('job_outbox').whereIn('id', [lost.id, undispatched.id]).orderBy('id');
      expect(after.map((r) => [r.id, r.redispatches])).to.deep.equal([
        [undispatched.id, 0],
        [lost.id, 1],
      ]);
      const job = await stack.job('thumbnails', undispatched.id);
      expect(job?.attemptsMade, `ran once; its failed attempts: ${job?.stacktrace.join('\n')}`).to.equal(1);
    } finally {
      await knex.destroy();
    }
  });
});

/**
 * The pids of the stack database's connections that serve the queues (QUEUE_BACKEND=postgres): the
 * Workers' LISTEN connections (named after their queue) and the queue pools (`…-queues`). With
 * `terminate`, each is terminated and waited for (up to 10 s), so none of them is still listed after.
 */
async function queueConnections(stack: JobStack, terminate = false): Promise<number[]> {
  const { rows } = await stack.knex.raw<{ rows: { pid: number }[] }>(
    `SELECT pid${terminate ? ', pg_terminate_backend(pid, 10000)' : ''} FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND (application_name = ANY(?) OR application_name LIKE '%-queues')`,
    [[...QUEUE_NAMES]],
  );
  return rows.map((r) => r.pid);
}

/** The pids of the Workers' LISTEN connections (named after their queue) that are not among `old`. */
async function newListenConnections(stack: JobStack, old: number[]): Promise<number[]> {
  const { rows } = await stack.knex.raw<{ rows: { pid: number }[] }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = ANY(?) AND NOT (pid = ANY(?))`,
    [[...QUEUE_NAMES], old],
  );
  return rows.map((r) => r.pid);
}

/**
 * The twin of the Redis loss on the PostgreSQL job store: there the jobs cannot vanish on their own,
 * but the store's connections can (a failover, a pooler restart, an operator's pg_terminate_backend).
 */
describe('faults: the PostgreSQL job store loses its connections mid-run [PostgreSQL store]', function () {
  this.timeout(120_000);
  let stack: JobStack;

  before(async () => {
    stack = await startJobStack({ env: { ...RECONCILE_ENV, SNAPSHOT_COPY_PARALLELISM: '2', ...POSTGRES_STORE_ENV } });
  });
  after(async () => {
    await stopWorkers(stack);
    await stack?.close();
  });

  it('every queue connection terminated while jobs wait and run, and again while they finish: every job completes, every effect exactly once', async () => {
    const mark = await maxOutboxId(stack.knex);
    const held = await heldListing(stack, 'pgcut');
    await stack.startWorker();
    const sessions = await patchSessions(stack, 'pgcut', 20, 3);
    await waitFor('every row dispatched and some jobs running', async () => (await allDispatchedAfter(stack, mark)) && (await activeJobs(stack)) > 0, {
      timeoutMs: 30_000,
    });
    // At least the worker's four LISTEN connections, and whatever its pool and the producers hold.
    const cut = await queueConnections(stack, true);
    expect(cut, 'queue connections terminated').to.have.length.at.least(QUEUE_NAMES.length);
    held.open();
    await waitFor('some jobs to finish after the cut', async () => (await outboxRowsAfter(stack, mark)).some((r) => r.finished_at !== null));
    // Counted by pid, not by name: a terminated backend can be listed for a moment after the signal.
    await waitFor('every LISTEN connection to be rebuilt', async () => (await newListenConnections(stack, cut)).length >= QUEUE_NAMES.length);
    const again = await queueConnections(stack, true);
    expect(again.filter((pid) => !cut.includes(pid)), 'the rebuilt connections, terminated again').to.have.length.at.least(QUEUE_NAMES.length);

    const rows = await allFinished(stack, mark);
    expect(rows.filter((r) => r.final_state !== 'completed').map((r) => [r.id, r.final_state, r.last_error])).to.deep.equal([]);
    expect(rows.filter((r) => r.redispatches > 1).map((r) => r.id), 'dispatched again at most once').to.deep.equal([]);
    await expectEffectsOnce(stack, sessions);
  });
});
