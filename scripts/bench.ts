import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { settleDatabase, startBench } from './bench/harness.js';
import type { PartContext } from './bench/part.js';
import { PARTS } from './bench/parts/index.js';
import { seedSessions, type SessionRange } from './bench/patch-load.js';
import { renderCpuTable, renderTable, summarise, type CpuRow, type Figure } from './bench/stats.js';
import { coerceError } from '../logger.js';
import { parseCli, runScript, UsageError } from './lib/cli.js';

const wrap = (text: string, indent: string): string =>
  text
    .split(' ')
    .reduce<string[]>((lines, word) => {
      const last = lines.at(-1);
      if (last !== undefined && last.length + word.length < 100 - indent.length) lines[lines.length - 1] = `${last} ${word}`;
      else lines.push(word);
      return lines;
    }, [])
    .join(`\n${indent}`);

const HELP = `Usage: npm run bench -- [--quick] [--only <part>[,<part>…]] [--json]

Measures Showrunner on this machine next to raw baselines measured in the same run, and prints one
table: median and spread over the repetitions, and each figure's ratio to its baseline.
Its parts (scripts/bench/parts/), in the order a run takes them:

${PARTS.map((p) => `  ${p.name.padEnd(13)}${wrap(p.measures, ' '.repeat(15))}\n${' '.repeat(15)}baseline: ${wrap(p.baseline, ' '.repeat(15))}${p.runs === 'only' ? `\n${' '.repeat(15)}(only with --only ${p.name}: the full run does not include it)` : p.runs === 'always' ? `\n${' '.repeat(15)}(in every run)` : ''}`).join('\n')}

It builds dist/ (npm run build) and runs the web and worker from it, as the Procfile does, with its
own database (<DATABASE_URL name>_bench), Redis prefix and Azurite, and removes them afterwards.
The web runs WEB_CONCURRENCY processes (default here: one per core, as you would deploy it).
A second table shows the CPU each process spent per operation.
  --quick     one short repetition of each part (scale still seeds its year of data)
  --only <p>  run these parts (comma-separated) and the ones every run includes
  --json      the results as JSON on stdout (the tables go to stderr); npm run bench:report turns
              a full run's JSON into docs/performance.md's table
  --help      this help
BENCH_PROFILE=<dir> writes V8 CPU profiles of the web and worker there.
Exits 1 if any request or job fails (the other parts still run, and their figures are printed).
Interrupted (Ctrl-C, SIGTERM), it stops its processes and removes its database and keys first.`;

runScript(async () => {
  const args = parseCli(HELP, { quick: { type: 'boolean' }, json: { type: 'boolean' }, only: { type: 'string' } });
  const only = args.only?.split(',').map((s) => s.trim());
  const unknown = only?.filter((name) => !PARTS.some((p) => p.name === name)) ?? [];
  if (unknown.length > 0) throw new UsageError(`--only takes ${PARTS.map((p) => p.name).join(', ')}; not ${unknown.join(', ')}`);
  const parts = PARTS.filter((p) => (only ? only.includes(p.name) || p.runs === 'always' : p.runs !== 'only'));
  const quick = args.quick ?? false;
  const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
  const started = Date.now();

  log(`starting web, worker, Azurite, media host; parts: ${parts.map((p) => p.name).join(', ')}`);
  const bench = await startBench(log);
  // Stopped early (Ctrl-C, a SIGTERM): its processes, database and keys go, as at a run's end.
  const interrupt = (signal: NodeJS.Signals): void => {
    log(`${signal}: stopping the bench's processes and removing its database`);
    void bench.close().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', interrupt).once('SIGTERM', interrupt);
  const figures: Figure[] = [];
  const cpuRows: CpuRow[] = [];
  const reports: string[] = [];
  let range: Promise<SessionRange> | undefined;
  const ctx: PartContext = {
    bench,
    quick,
    reps: quick ? 1 : 5,
    seconds: quick ? 3 : 8,
    log,
    sessions: () => (range ??= seedSessions(bench).then((r) => (log('seeded 10,000 sessions'), r))),
    shared: {},
  };
  const failed: string[] = [];
  try {
    for (const part of parts) {
      log(`part ${part.name}`);
      try {
        await settleDatabase(bench, log);
        const result = await part.run(ctx);
        figures.push(...result.figures);
        if (result.figures.length > 0) log(`${part.name}:\n${renderTable(result.figures.map(summarise))}`);
        cpuRows.push(...(result.cpu ?? []));
        if (result.report) reports.push(result.report);
      } catch (e) {
        // The other parts' figures still count; the run exits 1 and names the part that failed.
        failed.push(`${part.name}: ${coerceError(e).message}`);
        log(`part ${part.name} FAILED: ${coerceError(e).stack ?? ''}`);
      }
    }
  } finally {
    log('cleaning up');
    await bench.close();
  }

  const rows = figures.map(summarise);
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const seconds = Math.round((Date.now() - started) / 1000);
  const header =
    `Showrunner bench (${quick ? 'quick' : 'full'}, ${ctx.reps} repetition(s)) on ${machine}, ${new Date().toISOString()}, ` +
    `${seconds} s; WEB_CONCURRENCY=${bench.env.WEB_CONCURRENCY}, WORKER_CONCURRENCY=${bench.config.workerConcurrency}`;
  const cpuTable = `Where the CPU went (ms per operation, median; "machine" is everything busy on the box):\n\n${renderCpuTable(cpuRows)}`;
  const table = [header, renderTable(rows), cpuTable, ...reports].join('\n\n');
  if (args.json) {
    process.stderr.write(`${table}\n`);
    const cpu = cpuRows.map((r) => ({ run: r.run, per: r.perOp, ms: r.shares }));
    const run = { machine, quick, commit: headCommit(), repetitions: ctx.reps, parts: parts.map((p) => p.name), seconds, at: new Date().toISOString(), webConcurrency: bench.env.WEB_CONCURRENCY, workerConcurrency: bench.config.workerConcurrency };
    console.log(JSON.stringify({ ...run, figures: rows, cpu, ...(failed.length ? { failed } : {}) }, null, 2));
  } else {
    console.log(table);
  }
  if (failed.length > 0) {
    console.error(`bench: ${failed.length} part(s) failed:\n${failed.map((f) => `  ${f}`).join('\n')}`);
    return 1;
  }
  return 0;
});

/** The commit the run measured, short, for the report; undefined outside a git checkout. */
function headCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}
