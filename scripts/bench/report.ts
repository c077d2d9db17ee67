import { renderCpuTable, renderTable, type Summary } from './stats.js';

/** What `npm run bench -- --json` prints on stdout. */
export interface BenchRun {
  machine: string;
  quick: boolean;
  repetitions: number;
  parts: string[];
  seconds: number;
  at: string;
  commit?: string;
  webConcurrency: string;
  workerConcurrency: number;
  figures: Summary[];
  cpu: { run: string; per: string; ms: Record<string, number>[] }[];
  /** Parts that failed, with why (their figures are missing). */
  failed?: string[];
}

export const REPORT_START = '<!-- bench-report:start -->';
export const REPORT_END = '<!-- bench-report:end -->';

/**
 * The run's JSON from the bench's stdout: `npm run` prints its own banner lines first, so the
 * document starts at the first line that opens an object.
 */
export function parseBenchOutput(text: string): BenchRun {
  const start = text.search(/^\{/m);
  if (start < 0) throw new Error('no JSON object in the bench output (was it run with --json?)');
  const run = JSON.parse(text.slice(start)) as BenchRun;
  if (!Array.isArray(run.figures) || !Array.isArray(run.cpu)) throw new Error('the bench output has no figures or cpu rows');
  return run;
}

/** The section docs/performance.md §3 holds between its markers: a line about the run, the figures table, the CPU table. */
export function renderReport(run: BenchRun): string {
  const kind = run.quick ? 'quick' : 'full';
  const about =
    `\`npm run bench -- --json\` (${kind}, ${run.repetitions} repetition${run.repetitions === 1 ? '' : 's'}; parts: ${run.parts.join(', ')}) on ${run.machine}` +
    `${run.commit ? `, at commit \`${run.commit}\`` : ''}, ${run.at.slice(0, 16).replace('T', ' ')} UTC, ${Math.round(run.seconds / 60)} min; ` +
    `WEB_CONCURRENCY=${run.webConcurrency}, WORKER_CONCURRENCY=${run.workerConcurrency}.`;
  const cpu = renderCpuTable(run.cpu.map((r) => ({ run: r.run, perOp: r.per, shares: r.ms })));
  const failed = run.failed?.length ? [`Parts that failed in this run (no figures): ${run.failed.join('; ')}.`] : [];
  return [about, ...failed, renderTable(run.figures), 'Where the CPU went (ms per operation, median; "machine" is everything busy on the box):', cpu].join('\n\n');
}

/** `doc` with everything between the report markers replaced by `report`; throws when a marker is missing. */
export function replaceReport(doc: string, report: string): string {
  const start = doc.indexOf(REPORT_START);
  const end = doc.indexOf(REPORT_END);
  if (start < 0 || end < start) throw new Error(`the document lacks ${REPORT_START} … ${REPORT_END}`);
  return `${doc.slice(0, start + REPORT_START.length)}\n${report}\n${doc.slice(end)}`;
}
