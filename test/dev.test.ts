import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { DEMO_USER } from '../db/seeds/demo-user.js';
import { azuriteConnectionString } from '../scripts/lib/azurite.js';
import { childrenOf, freePort, startServiceProcess, type ServiceProcess } from '../scripts/lib/child-process.js';
import { deleteQueueKeys } from '../scripts/lib/queue-keys.js';
import { BlobStore } from '../workers/storage/blob-storage.js';
import { ownTestDatabase } from './helpers/database.js';
import { waitFor } from './helpers/wait.js';

/** Still running (a zombie nobody has reaped yet has ended too). */
const running = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** True when something accepts a connection on 127.0.0.1:port. */
const answers = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

/** How many lines of the output come from `name`'s logger and carry `message` (JSON or pretty). */
const logged = (output: string, name: 'web' | 'worker', message: string): number =>
  output.split('\n').filter((l) => l.includes(message) && (l.includes(`"name":"${name}"`) || l.includes(`(${name})`))).length;

interface Dev {
  proc: ServiceProcess;
  env: Record<string, string>;
  /** What dev started (web, worker, Azurite) and what they started (the web's processes). */
  pids: number[];
}

describe('npm run dev', function () {
  this.timeout(180_000);
  const db = ownTestDatabase({ poolMax: 1 });
  let dev: Dev | undefined;

  afterEach(async () => {
    if (!dev) return;
    try {
      // Whatever of the group a failed test left running.
      process.kill(-dev.proc.child.pid!, 'SIGKILL');
    } catch {
      // Nothing left: the usual case.
    }
    // Leave nothing of this run's (random, so unmistakable) prefix behind in Redis.
    await deleteQueueKeys(dev.env.REDIS_URL!, dev.env.QUEUE_PREFIX!);
    dev = undefined;
  });
  /**
   * `node --import tsx scripts/dev.ts` (what `npm run dev` runs) with its defaults, against this
   * test's own resources, once both web and worker have started. No blob storage answers at the
   * connection string, so dev starts an Azurite there.
   */
  async function startDev(extra: Record<string, string> = {}): Promise<Dev> {
    const env = {
      NODE_ENV: 'development',
      LOG_PRETTY: 'true',
      DATABASE_URL: db.url,
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      QUEUE_PREFIX: `srtest-${randomBytes(5).toString('hex')}`,
      PORT: String(await freePort()),
      AZURE_STORAGE_CONNECTION_STRING: azuriteConnectionString('127.0.0.1', await freePort()),
      // Tests keep Azurite's blobs in memory, never in the repository's .data/.
      DEV_AZURITE_LOCATION: 'memory',
      ...extra,
    };
    // In a process group of its own, as in a terminal: Ctrl-C there reaches dev and its processes alike.
    const proc = await startServiceProcess('scripts/dev.ts', env, 'worker started', { detached: true, timeoutMs: 120_000 });
    dev = { proc, env, pids: [] };
    await waitFor('the web process to listen', () => proc.output().includes('web listening'), { timeoutMs: 60_000 }).catch((e: Error) => {
      throw new Error(`${e.message}\n${proc.output().slice(-3000)}`);
    });
    const children = childrenOf(proc.child.pid!);
    dev.pids = [...children, ...children.flatMap(childrenOf)];
    return dev;
  }

  /** Every web process and the worker logged one graceful stop, nothing was forced, and nothing dev started is left. */
  async function expectOneGracefulStop({ proc, env, pids }: Dev, webProcesses = 1): Promise<void> {
    // The output pipe closes once every process writing to it (dev and all it started) has ended.
    await Promise.all([proc.child.stdout!, proc.child.stderr!].map((s) => (s.closed ? undefined : once(s, 'close'))));
    const output = proc.output();
    expect(logged(output, 'web', 'shut down cleanly'), output.slice(-3000)).to.equal(webProcesses);
    expect(logged(output, 'worker', 'shut down cleanly'), output.slice(-3000)).to.equal(1);
    expect(output).not.to.include('forcing');
    expect(output).not.to.include('did not stop cleanly');
    // Azurite writes to a pipe of dev's own; it goes once it sees dev has.
    await waitFor("dev's processes to end", () => pids.every((pid) => !running(pid)));
    expect(await answers(Number(env.PORT)), 'the web port is closed').to.equal(false);
  }

  it('seeds the demo user, and one SIGTERM to the whole process group (Ctrl-C, a platform stopping the group) is one graceful stop', async () => {
    const { proc } = await startDev();
    expect(await db.knex('users').where({ email: DEMO_USER.email }).first(), 'the demo user').to.not.equal(undefined);
    expect(dev!.pids, 'web, worker and Azurite').to.have.length(3);
    process.kill(-proc.child.pid!, 'SIGTERM');
    expect(await proc.exited, proc.output().slice(-3000)).to.equal(0);
    await expectOneGracefulStop(dev!);
  });

  it('keeps its blobs across a restart in DEV_AZURITE_LOCATION (the development database persists, so must what it names)', async () => {
    const location = mkdtempSync(path.join(os.tmpdir(), 'showrunner-dev-azurite-'));
    try {
      const first = await startDev({ DEV_AZURITE_LOCATION: location });
      const store = BlobStore.fromConnectionString(first.env.AZURE_STORAGE_CONNECTION_STRING!, { thumbnails: 'thumbnails', snapshots: 'community' });
      await store.ensureContainers();
      await store.upload('thumbnails', 'kept/across-restarts.webp', Buffer.from('still here'), 'image/webp');
      first.proc.signal('SIGTERM');
      expect(await first.proc.exited, first.proc.output().slice(-3000)).to.equal(0);
      await expectOneGracefulStop(first);

      const second = await startDev({ ...first.env, DEV_AZURITE_LOCATION: location, PORT: String(await freePort()) });
      expect((await store.download('thumbnails', 'kept/across-restarts.webp')).toString()).to.equal('still here');
      second.proc.signal('SIGTERM');
      expect(await second.proc.exited, second.proc.output().slice(-3000)).to.equal(0);
      await expectOneGracefulStop(second);
    } finally {
      rmSync(location, { recursive: true, force: true });
    }
  });

  it('SIGTERM to dev alone: it asks web and worker to stop, and each stops gracefully', async () => {
    const { proc } = await startDev();
    proc.signal('SIGTERM');
    expect(await proc.exited, proc.output().slice(-3000)).to.equal(0);
    await expectOneGracefulStop(dev!);
  });

  for (const webConcurrency of [1, 2]) {
    it(`dev killed outright (WEB_CONCURRENCY=${webConcurrency}): web and worker notice their parent is gone and stop gracefully`, async () => {
      const { proc } = await startDev({ WEB_CONCURRENCY: String(webConcurrency) });
      // dev's three, and the web supervisor's processes.
      expect(dev!.pids).to.have.length(webConcurrency > 1 ? 3 + webConcurrency : 3);
      proc.signal('SIGKILL');
      expect(await proc.exited).to.equal('SIGKILL');
      // The supervisor, when there is one, stops cleanly too.
      await expectOneGracefulStop(dev!, webConcurrency > 1 ? webConcurrency + 1 : 1);
    });
  }

  it('a second SIGTERM forces the stop, and dev exits non-zero as a process did not stop cleanly', async () => {
    const { proc, env } = await startDev();
    // A request still arriving keeps the web process stopping until its grace period (25 s) ends.
    const pending = net.connect(Number(env.PORT), '127.0.0.1');
    pending.on('error', () => undefined);
    await new Promise<void>((resolve) => pending.once('connect', () => resolve()));
    pending.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    try {
      proc.signal('SIGTERM');
      await waitFor('the web process to be stopping', () => logged(proc.output(), 'web', 'shutting down') === 1);
      proc.signal('SIGTERM');
      expect(await proc.exited, proc.output().slice(-3000)).to.equal(1);
      expect(logged(proc.output(), 'web', 'forcing exit')).to.equal(1);
      expect(proc.output()).to.match(/did not stop cleanly: web \(1\)/);
    } finally {
      pending.destroy();
    }
  });
});
