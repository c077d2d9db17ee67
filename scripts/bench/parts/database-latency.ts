import { startFaultProxy } from '../../../test/helpers/fault-proxy.js';
import { freePort, startServiceProcess } from '../../lib/child-process.js';
import type { BenchPart } from '../part.js';
import { patchLoad, type PatchKind } from '../patch-load.js';
import type { Figure } from '../stats.js';

/** Added by the proxy to every chunk either way, as in test/faults-database-latency.test.ts: a round trip gains twice this. */
const LATENCY_MS = 200;

/**
 * PATCH p50/p99 from a second web whose PostgreSQL is behind the tests' fault proxy in latency mode,
 * next to the same web with the proxy passing bytes straight through: what a slow network to the
 * database costs a request (a few round trips each), with the per-statement deadlines still holding.
 */
export const databaseLatencyPart: BenchPart = {
  name: 'dblatency',
  measures: `PATCH p50/p99 @8 of both kinds from a web whose PostgreSQL is ${LATENCY_MS} ms away each way (test/helpers/fault-proxy.ts, latency mode)`,
  baseline: 'the same web and proxy with no latency added',
  async run({ bench, quick, log, sessions }) {
    const range = await sessions();
    const target = new URL(bench.config.databaseUrl);
    const proxy = await startFaultProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const via = new URL(bench.config.databaseUrl);
    via.host = `${proxy.host}:${proxy.port}`;
    const port = await freePort();
    const web = await startServiceProcess('server/main.ts', { ...bench.env, PORT: String(port), METRICS_PORT: '0', DATABASE_URL: via.toString() }, '"web listening"', {
      timeoutMs: 60_000,
      compiled: true,
    });
    const url = `http://127.0.0.1:${port}`;
    const seconds = quick ? 8 : 15;
    const figures: Figure[] = [];
    try {
      for (const kind of ['field edit', 'writes jobs'] as PatchKind[]) {
        proxy.pass();
        await patchLoad(bench, range, kind, 8, 2, url);
        const near = await patchLoad(bench, range, kind, 8, seconds, url);
        proxy.latency(LATENCY_MS);
        log(`PATCH (${kind}) @8 with ${LATENCY_MS} ms between the web and PostgreSQL, ${seconds} s`);
        await patchLoad(bench, range, kind, 8, 3, url);
        const far = await patchLoad(bench, range, kind, 8, seconds, url);
        const baseline = (value: number) => ({ name: 'proxy, no latency', values: [value] });
        figures.push(
          { name: `PATCH ${kind} p50 @8, PostgreSQL +${LATENCY_MS} ms each way`, unit: 'ms', values: [far.p50], baseline: baseline(near.p50), better: 'lower' },
          { name: `PATCH ${kind} p99 @8, PostgreSQL +${LATENCY_MS} ms each way`, unit: 'ms', values: [far.p99], baseline: baseline(near.p99), better: 'lower' },
        );
      }
    } finally {
      proxy.pass();
      await web.stop();
      await proxy.close();
    }
    return { figures };
  },
};
