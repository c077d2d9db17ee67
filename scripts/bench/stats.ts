/** Small statistics for benchmark repetitions and latency samples. */

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The q-quantile (0..1) by nearest rank. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

export interface Figure {
  /** What is measured, e.g. "PATCH req/s @8". */
  name: string;
  unit: string;
  /** One value per repetition. */
  values: number[];
  /** The raw baseline measured in the same run, one value per repetition. */
  baseline?: { name: string; values: number[] };
  /** `higher` when bigger is better (throughput), `lower` for latencies and memory. */
  better: 'higher' | 'lower';
  /** The target, described and checked. */
  target?: { text: string; met: (figure: Summary) => boolean };
}

export interface Summary {
  name: string;
  unit: string;
  median: number;
  min: number;
  max: number;
  baselineName?: string;
  baselineMedian?: number;
  /** Ours relative to the baseline, as "fraction of the raw limit" (higher is better either way). */
  ratio?: number;
  target?: string;
  met?: boolean;
}

export function summarise(f: Figure): Summary {
  const m = median(f.values);
  const out: Summary = { name: f.name, unit: f.unit, median: m, min: Math.min(...f.values), max: Math.max(...f.values) };
  if (f.baseline) {
    const b = median(f.baseline.values);
    out.baselineName = f.baseline.name;
    out.baselineMedian = b;
    out.ratio = f.better === 'higher' ? m / b : b / m;
  }
  if (f.target) {
    out.target = f.target.text;
    out.met = f.target.met(out);
  }
  return out;
}

const fmt = (v: number | undefined): string =>
  v === undefined || Number.isNaN(v) ? '-' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);

/** A Markdown table, columns padded. */
function markdownTable(header: string[], lines: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const row = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [row(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(row)].join('\n');
}

/** The figures table of docs/performance.md §3. */
export function renderTable(rows: Summary[]): string {
  const header = ['figure', 'median', 'spread (min–max)', 'baseline', 'baseline median', 'ratio', 'target', 'met'];
  const lines = rows.map((r) => [
    r.name,
    `${fmt(r.median)} ${r.unit}`,
    `${fmt(r.min)}–${fmt(r.max)}`,
    r.baselineName ?? '-',
    r.baselineMedian === undefined ? '-' : `${fmt(r.baselineMedian)} ${r.unit}`,
    // Rounded down, so a ratio just under a target never shows as meeting it.
    r.ratio === undefined ? '-' : (Math.floor(r.ratio * 100) / 100).toFixed(2),
    r.target ?? '-',
    r.met === undefined ? '' : r.met ? 'yes' : 'NO',
  ]);
  return markdownTable(header, lines);
}

/** CPU ms per operation of each process, median over the repetitions of one run. */
export interface CpuRow {
  run: string;
  perOp: string;
  shares: Record<string, number>[];
}

/** Where the CPU went: a column per process, `machine` being everything busy on the box. */
export function renderCpuTable(rows: CpuRow[]): string {
  const columns = ['web', 'worker', 'azurite', 'postgres', 'bench', 'machine'];
  const lines = rows.map((r) => [r.run, r.perOp, ...columns.map((c) => fmt(median(r.shares.map((s) => s[c] ?? NaN))))]);
  return markdownTable(['run', 'per', ...columns.map((c) => `${c} ms`)], lines);
}
