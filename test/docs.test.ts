import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

/** The README is the operator's manual: it must name every setting and command there is, and no other. */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (file: string): string => readFileSync(path.join(root, file), 'utf8');

/** The README section under a `## ` heading. */
function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  expect(start, `README has a "## ${heading}" section`).to.be.greaterThan(-1);
  const end = markdown.indexOf('\n## ', start + 1);
  return markdown.slice(start, end === -1 ? undefined : end);
}

describe('docs: the README matches the code', () => {
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

  it('every `npm run <script>` the README shows exists in package.json', () => {
    const scripts = Object.keys((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts);
    const shown = new Set([...readme.matchAll(/npm run ([a-z][a-z:-]*)/g)].map((m) => m[1]!));
    expect(shown.size).to.be.greaterThan(5);
    expect([...shown].filter((s) => !scripts.includes(s)).sort()).to.deep.equal([]);
  });
});
