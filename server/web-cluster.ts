import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { describeConfig, type Config } from '../config.js';
import { createLogger } from '../logger.js';
import { listenMetrics } from '../metrics-listener.js';
import { exitOnStartupError, onShutdownSignal, SHUTDOWN_MESSAGE } from '../lifecycle.js';

/**
 * `WEB_CONCURRENCY` > 1: `server/main.ts` becomes a supervisor that runs that many web processes
 * sharing `PORT` (node:cluster hands each new connection to the next process). A web process is one
 * Node thread, so this is how one `web` command uses more than one core.
 *
 * The supervisor serves no requests. It starts the processes and says "web listening" once all of
 * them listen; replaces one that dies; stops everything (and exits 1) when one cannot start, since a
 * restart would only repeat that; passes SIGTERM/SIGINT on as a graceful stop and exits when all
 * have stopped; and serves `/metrics` on `METRICS_PORT`, adding up the processes' metrics.
 */

const RESTART_DELAY_MS = 1_000;

export async function superviseWebProcesses(config: Config): Promise<void> {
  const logger = createLogger(config, 'web');
  const count = config.webConcurrency;
  const aggregator = new AggregatorRegistry();
  const listened = new Set<number>();
  /** How the processes ended once stopping began. */
  const exitCodes: (number | string)[] = [];
  let stopping = false;
  let announced = false;

  // Counters and histograms summed over the processes; gauges as each metric's `aggregator` says.
  const metrics = config.metricsPort > 0 ? await listenMetrics({ port: config.metricsPort, host: config.metricsHost }, () => aggregator.clusterMetrics(), aggregator.contentType) : null;

  cluster.on('listening', (worker, address) => {
    listened.add(worker.id);
    if (!announced && listened.size >= count) {
      announced = true;
      logger.info({ port: address.port, processes: count, config: describeConfig(config) }, 'web listening');
    }
  });

  cluster.on('exit', (worker, code, signal) => {
    const wasServing = listened.delete(worker.id);
    if (stopping) {
      exitCodes.push(code ?? signal);
      return;
    }
    if (!wasServing) {
      // It never listened (pending migrations, a database it cannot reach): its own stderr says why.
      stopping = true;
      for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGTERM');
      exitOnStartupError(new Error(`a web process exited (${code ?? signal}) before it listened; see its message above`));
    }
    logger.error({ pid: worker.process.pid, code, signal }, 'web process died; starting another');
    setTimeout(() => {
      if (!stopping) cluster.fork();
    }, RESTART_DELAY_MS);
  });

  for (let i = 0; i < count; i++) cluster.fork();

  onShutdownSignal(logger, async () => {
    stopping = true;
    await metrics?.close();
    const running = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
    await Promise.all(
      running.map(
        (worker) =>
          new Promise<void>((resolve) => {
            worker.once('exit', () => resolve());
            if (worker.isConnected()) worker.send({ type: SHUTDOWN_MESSAGE });
            else worker.process.kill('SIGTERM');
          }),
      ),
    );
    const failed = exitCodes.filter((c) => c !== 0);
    if (failed.length > 0) throw new Error(`web process(es) exited with ${failed.join(', ')}`);
  });
}

/**
 * In a web process under the supervisor: lets the supervisor gather this process's registry (prom-client
 * answers its requests once an AggregatorRegistry exists here). Nothing in a process serving alone.
 */
export function joinClusterMetrics(registry: Registry): void {
  if (!cluster.isWorker) return;
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry();
}
