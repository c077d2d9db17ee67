import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../scripts/lib/child-process.js';
import { waitFor } from './wait.js';

export { freePort };

export interface RedisServer {
  url: string;
  port: number;
  /** SIGKILLs the server. Its data is gone unless it was started with `persist`. */
  stop(): Promise<void>;
  /** Starts it again on the same port (and, with `persist`, the same data). */
  start(): Promise<void>;
  /** Stops it and removes its data folder, if any. */
  destroy(): Promise<void>;
}

export interface RedisServerOptions {
  /**
   * Keep the data in an append-only file fsynced before every reply (`appendfsync always`), as a
   * production Redis for queues should: a SIGKILL then loses nothing Redis acknowledged.
   */
  persist?: boolean;
}

/** A test-owned `redis-server` on a port of its own, so a test can take Redis away and bring it back. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = options.persist ? mkdtempSync(path.join(os.tmpdir(), 'showrunner-redis-')) : undefined;
  const persistence = dir ? ['--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const ping = async (): Promise<boolean> => {
    const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    r.on('error', () => undefined);
    try {
      await r.connect();
      return (await r.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      r.disconnect();
    }
  };
  const server: RedisServer = {
    url,
    port,
    async start() {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--maxmemory-policy', 'noeviction'], {
        stdio: 'ignore',
      });
      await waitFor(`redis-server on port ${port}`, ping, { timeoutMs: 10_000 });
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((resolve) => c.once('exit', resolve));
      c.kill('SIGKILL');
      await exited;
    },
    async destroy() {
      await server.stop();
      process.off('exit', killOnExit);
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
  // One listener for the server, whichever start made its process, gone once it is destroyed.
  const killOnExit = (): void => void child?.kill('SIGKILL');
  process.once('exit', killOnExit);
  await server.start();
  return server;
}
