import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { describeConfig, type Config } from '../config.js';
import { coerceError, createLogger } from '../logger.js';
import { exitOnStartupError, onShutdownSignal, SHUTDOWN_MESSAGE } from '../lifecycle.js';

/**
 * `WEB_CONCURRENCY` > 1: `server/main.ts` becomes a supervisor that runs that many web processes
 * sharing `PORT` (node:cluster hands each new connection to the next process). A web process is one
 * Node thread, so this is how one `web` command uses more than one core.
 *
 * The supervisor serves no requests. It starts the processes and says "web listening" once all of
 * them listen; replaces one that dies; stops everything (and exits 1) when one cannot start, since a
 * restart would only repeat that; passes SIGTERM/SIGINT on as a graceful stop and exits when all
 * have stopped; and adds up their Prometheus metrics for whichever of them serves `/metrics`.
 */

const METRICS_MESSAGE = 'showrunner:metrics';
const RESTART_DELAY_MS = 1_000;
const METRICS_TIMEOUT_MS = 10_000;

interface MetricsRequest {
  type: typeof METRICS_MESSAGE;
  id: number;
}
interface MetricsReply {
  type: typeof METRICS_MESSAGE;
  id: number;
  text?: string;
  error?: string;
}

const isMessage = <T extends { type: string }>(message: unknown, type: T['type']): message is T =>
  typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;

export async function superviseWebProcesses(config: Config): Promise<void> {
  const logger = createLogger(config, 'web');
  const count = config.webConcurrency;
  const aggregator = new AggregatorRegistry();
  const listened = new Set<number>();
  /** How the processes ended once stopping began. */
  const exitCodes: (number | string)[] = [];
  let stopping = false;
  let announced = false;

  cluster.on('message', (worker: Worker, message: unknown) => {
    if (!isMessage<MetricsRequest>(message, METRICS_MESSAGE)) return;
    const reply = (r: Omit<MetricsReply, 'type' | 'id'>): void => {
      if (worker.isConnected()) worker.send({ type: METRICS_MESSAGE, id: message.id, ...r } satisfies MetricsReply);
    };
    aggregator.clusterMetrics().then(
      (text) => reply({ text }),
      (e: unknown) => reply({ error: coerceError(e).message }),
    );
  });

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
 * In a web process under the supervisor: the Prometheus text of every web process, added up by the
 * supervisor (counters and histograms summed; gauges as each metric's `aggregator` says). Null when
 * this process serves alone.
 */
export function clusterMetrics(registry: Registry): (() => Promise<string>) | null {
  if (!cluster.isWorker || !process.send) return null;
  // prom-client answers the supervisor's requests for this process's metrics once an
  // AggregatorRegistry exists here; it reports the registries set here.
  AggregatorRegistry.setRegistries([registry]);
  new AggregatorRegistry();
  const pending = new Map<number, { resolve: (text: string) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 0;
  process.on('message', (message: unknown) => {
    if (!isMessage<MetricsReply>(message, METRICS_MESSAGE)) return;
    const request = pending.get(message.id);
    if (!request) return;
    pending.delete(message.id);
    clearTimeout(request.timer);
    if (message.text !== undefined) request.resolve(message.text);
    else request.reject(new Error(`the web supervisor could not gather metrics: ${message.error ?? 'no reason given'}`));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`the web supervisor did not answer with metrics within ${METRICS_TIMEOUT_MS} ms`));
      }, METRICS_TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
      process.send!({ type: METRICS_MESSAGE, id } satisfies MetricsRequest);
    });
}
