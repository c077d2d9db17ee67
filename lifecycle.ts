import { loadConfig, type Config } from './config.js';
import type { Logger } from './logger.js';
import { coerceError } from './logger.js';

/** Prints why the process cannot start (a bad variable, pending migrations) and exits non-zero. */
export function exitOnStartupError(error: Error): never {
  process.stderr.write(`showrunner: cannot start: ${error.message}\n`);
  process.exit(1);
}

/** What a supervising process (the web's, with `WEB_CONCURRENCY` > 1) sends to ask for a graceful stop. */
export const SHUTDOWN_MESSAGE = 'showrunner:shutdown';

/**
 * Runs `shutdown` on the first SIGTERM or SIGINT (or {@link SHUTDOWN_MESSAGE} from a supervisor),
 * then exits; a second signal forces an exit at once. The message never forces: Ctrl-C reaches a
 * supervisor and its processes alike, and the supervisor passes the request on as well.
 */
export function onShutdownSignal(logger: Logger, shutdown: () => Promise<void>): void {
  let stopping = false;
  let signals = 0;
  const handler = (signal: NodeJS.Signals | 'supervisor'): void => {
    if (signal !== 'supervisor') signals += 1;
    if (stopping) {
      if (signals < 2) return;
      logger.warn({ signal }, 'second signal: forcing exit');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
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
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  if (process.send) {
    process.on('message', (message: unknown) => {
      if ((message as { type?: unknown } | null)?.type === SHUTDOWN_MESSAGE) handler('supervisor');
    });
  }
}

/**
 * A process entry point: reads the configuration, runs `main`, and turns a configuration or
 * start-up failure into one clear line on stderr and exit code 1.
 */
export async function runMain(main: (config: Config) => Promise<void>): Promise<void> {
  try {
    await main(loadConfig());
  } catch (e) {
    exitOnStartupError(coerceError(e));
  }
}
