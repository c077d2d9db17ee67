import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchOutput, renderReport, replaceReport } from './bench/report.js';
import { parseCli, runScript } from './lib/cli.js';

const HELP = `Usage: npm run bench:report -- [--input <file>]

Regenerates the latest figures of docs/performance.md (between its bench-report markers) from the
output of a full \`npm run bench -- --json > <file>\`, and keeps that run beside it as
docs/performance.json (test/docs.test.ts checks that the one is made from the other). The table is
never edited by hand.
  --input <file>  the bench's JSON output (default: bench.json)
  --help          this help`;

runScript(async () => {
  const args = parseCli(HELP, { input: { type: 'string' } });
  const run = parseBenchOutput(readFileSync(args.input ?? 'bench.json', 'utf8'));
  const docs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../docs');
  const doc = path.join(docs, 'performance.md');
  writeFileSync(doc, replaceReport(readFileSync(doc, 'utf8'), renderReport(run)));
  writeFileSync(path.join(docs, 'performance.json'), `${JSON.stringify(run, null, 2)}\n`);
  console.log(`docs/performance.md: ${run.figures.length} figures from the ${run.quick ? 'quick' : 'full'} run of ${run.at}`);
  return 0;
});
