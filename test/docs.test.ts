import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { parseBenchOutput, renderReport, replaceReport } from '../scripts/bench/report.js';

/**
 * The README is the front door and docs/ the manual: together they must name every setting and
 * command there is, and no other; their links must lead somewhere; and the code cites only them.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (file: string): string => readFileSync(path.join(root, file), 'utf8');
const DOCS = ['README.md', ...readdirSync(path.join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** The README section under a `## ` heading. */
function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  expect(start, `README has a "## ${heading}" section`).to.be.greaterThan(-1);
  const end = markdown.indexOf('\n## ', start + 1);
  return markdown.slice(start, end === -1 ? undefined : end);
}

/** The anchors GitHub gives a Markdown file's headings. */
function anchorsOf(markdown: string): Set<string> {
  const headings = markdown.replace(/```[\s\S]*?```/g, '').matchAll(/^#{1,6} (.+)$/gm);
  return new Set([...headings].map((m) => m[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-')));
}

/** Every `.ts` file of the project, tests and scripts included. */
function sourceFiles(dir = ''): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) return ['node_modules', 'dist', '.git', '.data'].includes(entry.name) ? [] : sourceFiles(rel);
    return entry.name.endsWith('.ts') ? [rel] : [];
  });
}

describe('docs: the README and docs/ match the code', () => {
  const readme = read('README.md');

  it('the configuration table lists exactly the variables config.ts reads', () => {
    // config.ts reads each variable through a reader given its name (`int(env, 'NAME', …)`).
    const used = new Set([...read('config.ts').matchAll(/\(env,\s*'([A-Z][A-Z0-9_]+)'/g)].map((m) => m[1]!));
    expect(used.size, 'config.ts variables found').to.be.greaterThan(30);
    const table = section(readme, 'Configuration');
    const documented = new Set<string>();
    for (const line of table.split('\n').filter((l) => l.startsWith('| `'))) {
      const first = line.split('|')[1]!;
      for (const m of first.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) documented.add(m[1]!);
    }
    expect([...used].filter((v) => !documented.has(v)).sort(), 'read by config.ts but not in the README table').to.deep.equal([]);
    expect([...documented].filter((v) => !used.has(v)).sort(), 'in the README table but not read by config.ts').to.deep.equal([]);
  });

  it('every `npm run <script>` the README and docs/ show exists in package.json', () => {
    const scripts = Object.keys((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts);
    const shown = new Set(DOCS.flatMap((file) => [...read(file).matchAll(/npm run ([a-z][a-z:-]*)/g)].map((m) => m[1]!)));
    expect(shown.size).to.be.greaterThan(5);
    expect([...shown].filter((s) => !scripts.includes(s)).sort()).to.deep.equal([]);
  });

  it('every relative link in the README and docs/ leads to a file and heading that exist', () => {
    const broken: string[] = [];
    for (const file of DOCS) {
      for (const [, target] of read(file).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const [linked, anchor] = target!.split('#') as [string, string | undefined];
        const resolved = linked === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), linked));
        if (!existsSync(path.join(root, resolved))) broken.push(`${file}: ${target} (no ${resolved})`);
        else if (anchor !== undefined && !anchorsOf(read(resolved)).has(anchor)) broken.push(`${file}: ${target} (no heading #${anchor})`);
      }
    }
    expect(broken).to.deep.equal([]);
  });

  it('docs/performance.md keeps the markers npm run bench:report writes between', () => {
    const performance = read('docs/performance.md');
    const start = performance.indexOf('<!-- bench-report:start -->');
    expect(start, 'start marker').to.be.greaterThan(-1);
    expect(performance.indexOf('<!-- bench-report:end -->'), 'end marker after the start').to.be.greaterThan(start);
  });

  it('docs/performance.md holds the table npm run bench:report makes from the run kept in docs/performance.json', () => {
    const run = parseBenchOutput(read('docs/performance.json'));
    const performance = read('docs/performance.md');
    expect(performance, 'regenerated from docs/performance.json, not edited by hand').to.equal(replaceReport(performance, renderReport(run)));
    expect(run.figures.length, 'a run with figures').to.be.greaterThan(0);
  });

  it('no source file cites a document outside the repo', () => {
    // docs/ is the project's own account of itself; a file outside the repo is not there for a reader of the code.
    // Written so that this file does not match itself.
    const outside = /DESIGN[ ]§|DESIGN\.md|STYLE\.md|\.\.\/shared\//;
    const citing = sourceFiles().filter((file) => outside.test(read(file)));
    expect(citing).to.deep.equal([]);
  });
});
