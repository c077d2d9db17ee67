import { startBareHttp } from '../bare-http.js';
import type { Bench, CpuShare } from '../harness.js';
import type { BenchPart } from '../part.js';
import { patchLoad, type PatchKind, type SessionRange } from '../patch-load.js';
import { rawPatchLoad } from '../raw-patch.js';
import type { CpuRow, Figure } from '../stats.js';

const KINDS: PatchKind[] = ['field edit', 'writes jobs'];

/** The raw baseline of each kind, as the table names it. */
const RAW: Record<PatchKind, string> = {
  'field edit': 'pg: login lookup + guarded UPDATE',
  'writes jobs': 'pg: login lookup + locked tx + outbox',
};

/**
 * PATCH /api/sessions/:id at 8 and 32 connections, of each kind, each run next to its matched raw
 * baseline, alternating (ours, raw, ours, raw …) so drift on a shared machine falls on both alike.
 */
export const patchPart: BenchPart = {
  name: 'patch',
  measures:
    'req/s and p50/p99 of PATCH /api/sessions/:id (10,000 sessions, autocannon) at 8 and 32 connections: a field edit (the ' +
    "reference's body) and a subreddits change (writes a media sync and a thumbnail job; the queues are held meanwhile)",
  baseline:
    'the same statements straight through pg, as many clients: the login lookup and the guarded UPDATE; the login lookup and the locked transaction with its outbox inserts. ' +
    'Beside the field edit, the same load against node:http alone (no database, a fixed answer): the HTTP floor, and the ratio a PATCH could reach if it cost the raw statements plus that floor',
  async run({ bench, reps, seconds, log, sessions }) {
    const range = await sessions();
    const answer = (await (await fetch(`${bench.webUrl}/api/sessions/${range.first}`, { headers: { cookie: bench.user.cookie } })).json()) as { session: unknown };
    const bare = await startBareHttp(new URL(bench.webUrl).hostname, Number(bench.env.WEB_CONCURRENCY), JSON.stringify(answer.session));
    try {
      return await measure(bench, range, reps, seconds, log, bare.url);
    } finally {
      await bare.close();
    }
  },
};

async function measure(bench: Bench, range: SessionRange, reps: number, seconds: number, log: (line: string) => void, bareUrl: string): Promise<{ figures: Figure[]; cpu: CpuRow[] }> {
  // Warm-up at the higher concurrency: every pooled connection of every web process gets used
  // (and prepares its statements) and each process's JIT settles before anything is measured.
  log('PATCH warm-up');
  for (const kind of KINDS) {
    await patchLoad(bench, range, kind, 32, 3);
    await rawPatchLoad(bench, range, kind, 32, 2);
  }
  await patchLoad(bench, range, 'field edit', 32, 2, bareUrl);
  const figures: Figure[] = [];
  const cpu: CpuRow[] = [];
  for (const connections of [8, 32]) {
    for (const kind of KINDS) {
      const ours = { rps: [] as number[], p50: [] as number[], p99: [] as number[], cpu: [] as CpuShare[] };
      const raw = { rps: [] as number[], p50: [] as number[], p99: [] as number[], cpu: [] as CpuShare[] };
      const floor = { rps: [] as number[], cpu: [] as CpuShare[] };
      for (let r = 0; r < reps; r++) {
        log(`PATCH (${kind}) @${connections} repetition ${r + 1}/${reps}`);
        const a = await patchLoad(bench, range, kind, connections, seconds);
        const b = await rawPatchLoad(bench, range, kind, connections, seconds);
        ours.rps.push(a.reqPerSec), ours.p50.push(a.p50), ours.p99.push(a.p99), ours.cpu.push(a.cpu);
        raw.rps.push(b.reqPerSec), raw.p50.push(b.p50), raw.p99.push(b.p99), raw.cpu.push(b.cpu);
        if (kind === 'field edit') {
          const c = await patchLoad(bench, range, kind, connections, seconds, bareUrl);
          floor.rps.push(c.reqPerSec), floor.cpu.push(c.cpu);
        }
      }
      const baseline = (values: number[]) => ({ name: RAW[kind], values });
      figures.push(
        {
          name: `PATCH ${kind} throughput @${connections}`,
          unit: 'req/s',
          values: ours.rps,
          baseline: baseline(raw.rps),
          better: 'higher',
          ...(connections === 8 ? { target: { text: 'ratio ≥ 0.8', met: (s) => (s.ratio ?? 0) >= 0.8 } } : {}),
        },
        { name: `PATCH ${kind} p50 @${connections}`, unit: 'ms', values: ours.p50, baseline: baseline(raw.p50), better: 'lower' },
        {
          name: `PATCH ${kind} p99 @${connections}`,
          unit: 'ms',
          values: ours.p99,
          baseline: baseline(raw.p99),
          better: 'lower',
          // A ratio, not milliseconds: this machine's absolute latency swings by 2× from day to day,
          // while the raw statements measured in the same run move with it.
          ...(connections === 32 ? { target: { text: 'ratio ≥ 0.67', met: (s) => (s.ratio ?? 0) >= 0.67 } } : {}),
        },
      );
      cpu.push({ run: `PATCH ${kind} @${connections}`, perOp: 'request', shares: ours.cpu });
      cpu.push({ run: `${RAW[kind]} @${connections}`, perOp: 'request', shares: raw.cpu });
      if (floor.rps.length > 0) {
        figures.push(
          { name: `HTTP alone (node:http, fixed answer) @${connections}`, unit: 'req/s', values: floor.rps, better: 'higher' },
          // On a machine whose cores are all busy, costs add: 1/ceiling = 1/raw + 1/HTTP alone.
          {
            name: `PATCH ${kind} ceiling ratio @${connections} (raw statements + HTTP alone)`,
            unit: '×',
            values: floor.rps.map((h, i) => h / (h + raw.rps[i]!)),
            better: 'higher',
          },
        );
        cpu.push({ run: `HTTP alone (node:http) @${connections}`, perOp: 'request', shares: floor.cpu });
      }
    }
  }
  return { figures, cpu };
}
