import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../scripts/lib/child-process.js';
import { waitFor } from './wait.js';

const run = promisify(execFile);

export interface RedisCluster {
  /** `redis-cluster://127.0.0.1:p1,127.0.0.1:p2,…`: REDIS_URL for this cluster. */
  url: string;
  ports: number[];
  /**
   * SIGKILLs every node: the whole cluster is unreachable. Their data stays (append-only, fsynced)
   * unless the cluster was started with `persist: false`.
   */
  stop(): Promise<void>;
  /** Starts every node again on its port (and its `nodes.conf`, so the same cluster), and waits for `cluster_state:ok`. */
  start(): Promise<void>;
  /** Stops the nodes and removes their data folders. */
  destroy(): Promise<void>;
  /** `redis-cli -p <port> <args>` against one node. */
  cli(port: number, ...args: string[]): Promise<string>;
}

export interface RedisClusterOptions {
  /**
   * Keep each node's data in an append-only file fsynced before every reply (default true). Without
   * it a stop and start is a restart without persistence: the same cluster (each node keeps its
   * `nodes.conf`, so its slots), every key gone.
   */
  persist?: boolean;
}

/**
 * A test-owned Redis Cluster of `masters` masters and no replicas: `redis-server --cluster-enabled yes`
 * processes on free ports, joined with `redis-cli --cluster create`, each keeping its data and its
 * `nodes.conf` in a folder of its own so a stop and start brings back the same cluster.
 */
export async function startRedisCluster(masters = 3, options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const persistence = options.persist === false ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', 'always'];
  const ports: number[] = [];
  while (ports.length < masters) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  const dirs = ports.map(() => mkdtempSync(path.join(os.tmpdir(), 'showrunner-redis-cluster-')));
  let children: ChildProcess[] = [];
  const cli = async (port: number, ...args: string[]): Promise<string> => (await run('redis-cli', ['-p', String(port), ...args])).stdout;
  const stateOk = async (): Promise<boolean> => {
    for (const port of ports) if (!(await cli(port, 'CLUSTER', 'INFO').catch(() => '')).includes('cluster_state:ok')) return false;
    return true;
  };
  const cluster: RedisCluster = {
    url: `redis-cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    ports,
    cli,
    async start() {
      children = ports.map((port, i) => {
        const child = spawn(
          'redis-server',
          ['--port', String(port), '--bind', '127.0.0.1', '--dir', dirs[i]!, '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
            '--save', '', ...persistence, '--maxmemory-policy', 'noeviction'],
          { stdio: 'ignore' },
        );
        return child;
      });
      await Promise.all(ports.map((port) => waitFor(`redis-server on port ${port}`, async () => (await cli(port, 'PING').catch(() => '')).includes('PONG'), { timeoutMs: 10_000 })));
    },
    async stop() {
      await Promise.all(
        children.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => {
          const exited = new Promise((resolve) => c.once('exit', resolve));
          c.kill('SIGKILL');
          return exited;
        }),
      );
    },
    async destroy() {
      await cluster.stop();
      process.off('exit', removeOnExit);
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    },
  };
  // One listener for every node, whichever start made it: none outlives the test run (a parallel
  // run's worker process ends with its shared cluster still up), and neither do their folders.
  // Gone once the cluster is destroyed, so a process that starts many leaves no listeners behind.
  const removeOnExit = (): void => {
    children.forEach((c) => c.kill('SIGKILL'));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', removeOnExit);
  const startAndWait = cluster.start;
  cluster.start = async () => {
    await startAndWait();
    await waitFor('cluster_state:ok', stateOk, { timeoutMs: 30_000 });
  };
  try {
    await startAndWait();
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    await waitFor('cluster_state:ok', stateOk, { timeoutMs: 30_000 });
  } catch (e) {
    await cluster.destroy();
    throw e;
  }
  return cluster;
}

let shared: Promise<RedisCluster> | undefined;

/**
 * One three-master cluster for the whole mocha run, started on first use (so a run without cluster
 * tests starts none) and stopped by the global teardown. Suites on it keep apart by queue prefix, as
 * they do on the local Redis; a suite that stops, empties or restarts Redis starts a cluster of its own.
 */
export function sharedRedisCluster(): Promise<RedisCluster> {
  shared ??= startRedisCluster(3, { persist: false });
  return shared;
}

/** Removes the shared cluster, if this run started one. */
export async function destroySharedRedisCluster(): Promise<void> {
  const cluster = await shared?.catch(() => undefined);
  shared = undefined;
  await cluster?.destroy();
}
