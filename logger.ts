import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger };

/**
 * One structured JSON logger per process; pretty-printed when `LOG_PRETTY` is on (the development default).
 * Secrets never reach it: config is logged through `describeConfig`, and request logs carry no headers.
 */
export function createLogger(config: Pick<Config, 'logLevel' | 'logPretty'>, name: string): Logger {
  const options = {
    name,
    level: config.logLevel,
    redact: { paths: ['password', '*.password', 'cookie', '*.cookie', 'authorization', '*.authorization'], censor: '***' },
    ...(config.logPretty
      ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } }
      : {}),
  };
  if (config.logPretty) return pino(options);
  // Asynchronous writes to stdout (lines written while one is in flight go out together): a
  // synchronous write per line costs the API a good part of its CPU under load. Lines are also
  // gathered up to 4 KB (or 250 ms, whichever comes first) so that a busy process makes one write
  // per dozen or so request lines rather than one per line. pino flushes at exit.
  return pino(options, pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 250 }));
}

/** Turns anything thrown into an Error, so every `catch (e: unknown)` has one shape to log. */
export function coerceError(e: unknown): Error {
  if (e instanceof Error) return e;
  return new Error(typeof e === 'string' ? e : JSON.stringify(e));
}
