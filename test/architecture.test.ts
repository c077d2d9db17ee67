import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import ts from 'typescript';

/**
 * The layering docs/architecture.md §1 describes, drawn from the code's own imports: db ← workers ←
 * server, server/ reaches workers/ only through its public face, nothing imports server/ or a
 * process entry point, and there are no import loops.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE_DIRS = ['db', 'workers', 'server', 'scripts'];
const ENTRY_POINTS = ['server/main.ts', 'workers/main.ts'];
const WORKERS_FACE = 'workers/index.ts';

function sourceFiles(): string[] {
  const files = readdirSync(root).filter((f) => f.endsWith('.ts'));
  const walk = (dir: string): void => {
    for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.posix.join(dir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) files.push(rel);
    }
  };
  for (const dir of SOURCE_DIRS) walk(dir);
  return files.sort();
}

/** The project files a file imports (static imports, re-exports and dynamic imports of literal paths). */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(path.join(root, file), 'utf8'), true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((spec) => spec.startsWith('.'))
    .map((spec) => path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)).replace(/\.js$/, '.ts'));
}

const graph = new Map(sourceFiles().map((f) => [f, importsOf(f)]));
const layer = (file: string): string => file.split('/')[0]!;

describe('architecture: imports follow the layering', () => {
  it('finds the source tree (a test that reads nothing proves nothing)', () => {
    expect(graph.size).to.be.greaterThan(50);
    expect(graph.get('server/app.ts')).to.include(WORKERS_FACE);
  });

  it('server/ imports nothing under workers/ but workers/index.ts', () => {
    const offending = [...graph].flatMap(([file, deps]) =>
      layer(file) === 'server' ? deps.filter((d) => layer(d) === 'workers' && d !== WORKERS_FACE).map((d) => `${file} → ${d}`) : [],
    );
    expect(offending).to.deep.equal([]);
  });

  it('db/ imports neither workers/ nor server/, and workers/ does not import server/', () => {
    const offending = [...graph].flatMap(([file, deps]) =>
      deps
        .filter((d) => (layer(file) === 'db' && (layer(d) === 'workers' || layer(d) === 'server')) || (layer(file) === 'workers' && layer(d) === 'server'))
        .map((d) => `${file} → ${d}`),
    );
    expect(offending).to.deep.equal([]);
  });

  it('no module imports a process entry point', () => {
    const offending = [...graph].flatMap(([file, deps]) => deps.filter((d) => ENTRY_POINTS.includes(d)).map((d) => `${file} → ${d}`));
    expect(offending).to.deep.equal([]);
  });

  it('has no import loops', () => {
    const loops: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (file: string, trail: string[]): void => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'visiting') {
        loops.push([...trail.slice(trail.indexOf(file)), file].join(' → '));
        return;
      }
      state.set(file, 'visiting');
      for (const dep of graph.get(file) ?? []) visit(dep, [...trail, file]);
      state.set(file, 'done');
    };
    for (const file of graph.keys()) visit(file, []);
    expect(loops).to.deep.equal([]);
  });

  it('SQL lives in db/: no query builder or raw SQL outside it', () => {
    // A transaction boundary (`knex.transaction`) belongs to the service that needs it; the statements
    // inside it are db/ functions. The bench measures raw baselines and may write its own SQL.
    const QUERY = /\b(?:knex|trx)(?:\.raw)?\(\s*['`]|\.raw\(\s*['`]|\.query\(\s*['`]/;
    const offending = [...graph.keys()]
      .filter((f) => !f.startsWith('db/') && !f.startsWith('scripts/bench'))
      .flatMap((f) =>
        readFileSync(path.join(root, f), 'utf8')
          .split('\n')
          .map((line, i) => ({ line, at: `${f}:${i + 1}` }))
          .filter(({ line }) => QUERY.test(line))
          .map(({ at, line }) => `${at}: ${line.trim()}`),
      );
    expect(offending).to.deep.equal([]);
  });
});
