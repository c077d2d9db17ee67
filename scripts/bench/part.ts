import type { Bench } from './harness.js';
import type { SessionRange } from './patch-load.js';
import type { CpuRow, Figure } from './stats.js';

/** What every part is given by the bench's command line (scripts/bench.ts). */
export interface PartContext {
  bench: Bench;
  /** `--quick`: one short repetition; each part sizes its own runs from it. */
  quick: boolean;
  /** Repetitions of each measurement (5; 1 with `--quick`). */
  reps: number;
  /** Seconds of one timed load run (8; 3 with `--quick`). */
  seconds: number;
  log: (line: string) => void;
  /** The bench user's 10,000 sessions that PATCH loads edit, seeded by the first part to ask. */
  sessions(): Promise<SessionRange>;
  /**
   * Figures one part measured that a later one reads: the worker's peak RSS before the snapshot
   * part resets it (for its 25 MB figure), and thumbnail jobs/s (the capacity the thumbnail latency
   * figure loads to half).
   */
  shared: { workerPeakMb?: number; thumbnailsPerSec?: number };
}

export interface PartResult {
  figures: Figure[];
  /** Rows of the table of where the CPU went. */
  cpu?: CpuRow[];
  /** Text printed after the tables (plans, samples). */
  report?: string;
}

/** One part of the bench: a module under scripts/bench/parts/, listed in parts/index.ts. */
export interface BenchPart {
  /** Its `--only` name. */
  name: string;
  /** What it measures, for `--help` and docs/performance.md §1. */
  measures: string;
  /** Its raw baseline: the same work with none of the platform. */
  baseline: string;
  /** `only`: run with `--only <name>` alone, never in the full run (the soak); `always`: in every run, whatever `--only` names. */
  runs?: 'only' | 'always';
  run(ctx: PartContext): Promise<PartResult>;
}
