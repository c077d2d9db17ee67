import cluster from 'node:cluster';
import { loadConfig, stopsWithParent, type Config } from './config.js';
import type { Logger } from './logger.js';
import { coerceError } from './logger.js';

/** Prints why the process cannot start (a bad variable, pending migrations) and exits non-zero. */
export function exitOnStartupError(error: Error): never {
  process.stderr.write(`showrunner: cannot start: ${error.message}\n`);
  process.exit(1);
}

/**
 * What a supervising process (the web's, with `WEB_CONCURRENCY` > 1, or `npm run dev`) sends to ask
 * for a graceful stop: `{ type: SHUTDOWN_MESSAGE }`. With `force: true` it asks for the forced
 * stop a second signal gives (`npm run dev` sends that on its own second signal).
 */
export const SHUTDOWN_MESSAGE = 'showrunner:shutdown';

type StopReason = NodeJS.Signals | 'supervisor' | 'parent gone';
type StopRequest = (reason: StopReason, force: boolean) => void;

/** Where requests from the parent go once {@link onShutdownSignal} has run; until then they wait here. */
let onParentRequest: StopRequest | undefined;
const earlyRequests: [StopReason, boolean][] = [];
let listeningToParent = false;

/**
 * Listens to the parent (when started with an IPC channel) for stop requests, from the start: a
 * request that comes while the process is still starting is acted on as soon as it can stop.
 */
function listenToParent(): void {
  if (listeningToParent || !process.send) return;
  listeningToParent = true;
  const request: StopRequest = (reason, force) => (onParentRequest ? onParentRequest(reason, force) : void earlyRequests.push([reason, force]));
  process.on('message', (message: unknown) => {
    const m = message as { type?: unknown; force?: unknown } | null;
    if (m?.type === SHUTDOWN_MESSAGE) request('supervisor', m.force === true);
  });
  // A web supervisor's processes are left to node:cluster, which ends them with their supervisor.
  if (!stopsWithParent() || cluster.isWorker) return;
  if (process.connected) process.once('disconnect', () => request('parent gone', false));
  else request('parent gone', false);
}

/**
 * Runs `shutdown` on the first SIGTERM or SIGINT (or {@link SHUTDOWN_MESSAGE} from a supervisor),
 * then exits; a second signal forces an exit at once. The message never forces unless it says so:
 * Ctrl-C reaches a supervisor and its processes alike, and the supervisor passes the request on as
 * well. Under a parent that set `STOP_WITH_PARENT_ENV` (config.ts), losing the parent is a graceful stop too.
 * With `deadlineMs`, a stop that has not finished by then (a connection that never closes) ends in
 * an exit 1 that says so, rather than a process that hangs until something kills it.
 */
export function onShutdownSignal(logger: Logger, shutdown: () => Promise<void>, deadlineMs?: number): void {
  let stopping = false;
  let signals = 0;
  const handler = (reason: StopReason, force = false): void => {
    if (reason === 'SIGTERM' || reason === 'SIGINT') signals += 1;
    if (stopping) {
      if (signals < 2 && !force) return;
      logger.warn({ signal: reason }, force ? 'supervisor asked to force: forcing exit' : 'second signal: forcing exit');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal: reason }, 'shutting down');
    if (deadlineMs !== undefined) {
      setTimeout(() => {
        logger.error({ deadlineMs }, 'shutdown did not finish in time: exiting');
        process.exit(1);
      }, deadlineMs).unref();
    }
    shutdown().then(
      () => {
        logger.info('shut down cleanly');
        process.exit(0);
      },
      (e: unknown) => {
        logger.error({ err: coerceError(e) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // Node passes a listener the signal's number too: it is no `force`.
  const onSignal = (signal: NodeJS.Signals): void => handler(signal);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  listenToParent();
  onParentRequest = handler;
  for (const [reason, force] of earlyRequests.splice(0)) handler(reason, force);
}

/**
 * A process entry point: reads the configuration, runs `main`, and turns a configuration or
 * start-up failure into one clear line on stderr and exit code 1.
 */
export async function runMain(main: (config: Config) => Promise<void>): Promise<void> {
  listenToParent();
  try {
    await main(loadConfig());
  } catch (e) {
    exitOnStartupError(coerceError(e));
  }
}
