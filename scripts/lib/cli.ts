import { parseArgs, type ParseArgsConfig } from 'node:util';
import cliProgress from 'cli-progress';
import { pino } from 'pino';
import { loadConfig, type Config } from '../../config.js';
import { createKnex, databaseBounds, type Knex } from '../../db/knex.js';
import { coerceError } from '../../logger.js';
import { createJobClient, outboxJobId, type JobClient, type JobProducer, type OutboxDispatcher, type QueueName } from '../../workers/index.js';

/** A usage error: printed with the help hint, exit code 2. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parses argv strictly; `--help` prints the help and exits 0, a bad flag exits 2. */
export function parseCli<O extends Options>(help: string, options: O, argv = process.argv.slice(2)) {
  try {
    const parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean' } }, strict: true, allowPositionals: false });
    if ((parsed.values as { help?: boolean }).help) {
      console.log(help);
      process.exit(0);
    }
    return parsed.values as { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : O[K]['multiple'] extends true ? string[] : string };
  } catch (e) {
    throw new UsageError(coerceError(e).message);
  }
}

/** Whole positive ids from repeated or comma-separated flags. */
export function ids(values: string[] | undefined, flag: string): number[] {
  const out: number[] = [];
  for (const v of (values ?? []).flatMap((s) => s.split(','))) {
    if (!/^\d{1,10}$/.test(v.trim()) || Number(v) < 1) throw new UsageError(`--${flag} takes positive whole numbers, got "${v}"`);
    out.push(Number(v));
  }
  return out;
}

export interface ScriptContext {
  config: Config;
  knex: Knex;
  /** Created on first use: a dry run never touches Redis. */
  producer(): JobProducer;
  dispatcher(): OutboxDispatcher;
  close(): Promise<void>;
}

export function scriptContext(name: string): ScriptContext {
  const config = loadConfig();
  const knex = createKnex({ databaseUrl: config.databaseUrl, poolMax: 4, applicationName: `showrunner-${name}`, bounds: databaseBounds(config, 'script') });
  const logger = pino({ level: 'silent' });
  let jobs: JobClient | undefined;
  const client = (): JobClient => (jobs ??= createJobClient(config, knex, logger, `showrunner-${name}`));
  return {
    config,
    knex,
    producer: () => client().producer,
    dispatcher: () => client().dispatcher,
    async close() {
      await jobs?.close();
      await knex.destroy();
    },
  };
}

/** A progress bar on a terminal; one line per 10% elsewhere (CI logs, pipes). */
export function progress(label: string, total: number): { tick(n?: number): void; stop(): void } {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} {percentage}% eta {eta_formatted}`, stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    return { tick: (n = 1) => bar.increment(n), stop: () => bar.stop() };
  }
  let done = 0;
  let lastDecile = -1;
  return {
    tick(n = 1) {
      done += n;
      const decile = total === 0 ? 10 : Math.floor((done / total) * 10);
      if (decile !== lastDecile) {
        lastDecile = decile;
        process.stderr.write(`${label}: ${done}/${total}\n`);
      }
    },
    stop() {},
  };
}

/**
 * Dispatches the outbox rows now; rows Redis does not take stay for the worker's relay, and the
 * returned message says so.
 */
export async function dispatchNow(ctx: ScriptContext, outboxIds: number[]): Promise<string | null> {
  // Give a fresh connection a moment to come up before deciding Redis is away.
  await ctx.producer().waitUntilReady(3_000);
  let dispatched = 0;
  for (let i = 0; i < outboxIds.length; i += 500) dispatched += (await ctx.dispatcher().dispatchIds(outboxIds.slice(i, i + 500))).dispatched;
  return dispatched === outboxIds.length ? null : `${outboxIds.length - dispatched} job(s) could not reach Redis now; the worker's outbox relay will dispatch them`;
}

/**
 * Writes the jobs for `ids` through the outbox in chunks (one transaction each) with a progress bar,
 * then dispatches them now, leaving whatever Redis does not take to the relay. Says how many it queued.
 */
export async function queueInChunks<R extends { outboxId: number }>(
  ctx: ScriptContext,
  ids: number[],
  chunkSize: number,
  write: (chunk: number[]) => Promise<R[]>,
  what: string,
): Promise<R[]> {
  const bar = progress('queueing', ids.length);
  const written: R[] = [];
  try {
    for (let i = 0; i < ids.length; i += chunkSize) {
      const chunk = await write(ids.slice(i, i + chunkSize));
      written.push(...chunk);
      bar.tick(chunk.length);
    }
  } finally {
    bar.stop();
  }
  const warning = await dispatchNow(ctx, written.map((r) => r.outboxId));
  if (warning) console.warn(`warning: ${warning}`);
  console.log(`queued ${written.length} ${what} job(s)`);
  return written;
}

export interface JobOutcome {
  outboxId: number;
  state: 'completed' | 'failed' | 'timeout';
  result?: unknown;
  reason?: string;
}

/** Follows jobs until each completes or fails (or the deadline passes), with a progress bar. */
export async function followJobs(ctx: ScriptContext, queue: QueueName, outboxIds: number[], timeoutMs: number): Promise<Map<number, JobOutcome>> {
  const q = ctx.producer().queues[queue];
  const outcomes = new Map<number, JobOutcome>();
  const bar = progress(`waiting for ${queue} jobs`, outboxIds.length);
  const deadline = Date.now() + timeoutMs;
  try {
    while (outcomes.size < outboxIds.length && Date.now() < deadline) {
      for (const id of outboxIds) {
        if (outcomes.has(id)) continue;
        const job = await q.getJob(outboxJobId(id)).catch(() => undefined);
        if (!job) continue;
        const state = await job.getState();
        if (state === 'completed') outcomes.set(id, { outboxId: id, state, result: job.returnvalue });
        else if (state === 'failed') outcomes.set(id, { outboxId: id, state, reason: job.failedReason });
        else continue;
        bar.tick();
      }
      if (outcomes.size < outboxIds.length) await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    bar.stop();
  }
  for (const id of outboxIds) if (!outcomes.has(id)) outcomes.set(id, { outboxId: id, state: 'timeout' });
  return outcomes;
}

/** Runs a script's main: exit 0 on success, 1 on failure, 2 on a usage error. */
export function runScript(main: () => Promise<number | void>): void {
  main().then(
    (code) => process.exit(code ?? 0),
    (e: unknown) => {
      const error = coerceError(e);
      if (error instanceof UsageError) {
        console.error(`error: ${error.message}\n(see --help)`);
        process.exit(2);
      }
      console.error(`error: ${error.message}`);
      process.exit(1);
    },
  );
}
