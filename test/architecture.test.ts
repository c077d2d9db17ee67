import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import ts from 'typescript';

/**
 * The layering docs/architecture.md §1 describes, drawn from the code's own imports: db ← workers ←
 * server, server/ reaches workers/ only through its public face, nothing imports server/ or a
 * process entry point, there are no import loops, and SQL lives in db/.
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

/**
 * Calls outside db/ that reach the database, found by where the TypeScript checker says each callee
 * is declared, not by the call's text: any call into knex (the query builder in every spelling: `knex<Row>('t')`, `trx('t')`,
 * `.from(`, `.raw(`, `.schema.…`), any into pg but those of a LISTEN connection, and db/knex.ts's
 * statement runners. Allowed: a transaction boundary (`knex.transaction`), which belongs to the
 * service that needs it (the statements inside it are db/ functions), closing a pool (`destroy`), and
 * the relay's LISTEN connection (`new pg.Client`, `connect`, `on`, `end`; it listens through a db/
 * function). The bench measures raw baselines and may write its own SQL.
 */
const ALLOWED_CALLS: Record<'knex' | 'pg', string[]> = { knex: ['transaction', 'destroy'], pg: ['Client', 'connect', 'on', 'end'] };
const STATEMENT_RUNNERS = ['preparedQuery', 'prepared'];

function databaseCallsOutsideDb(): string[] {
  const files = [...graph.keys()].filter((f) => !f.startsWith('db/') && !f.startsWith('scripts/bench'));
  const { config } = ts.readConfigFile(path.join(root, 'tsconfig.json'), (f) => ts.sys.readFile(f));
  const { options } = ts.parseJsonConfigFileContent(config, ts.sys, root);
  const program = ts.createProgram(files.map((f) => path.join(root, f)), { ...options, noEmit: true });
  const checker = program.getTypeChecker();
  const found: string[] = [];
  for (const file of files) {
    const source = program.getSourceFile(path.join(root, file))!;
    const visit = (node: ts.Node): void => {
      if (ts.isCallExpression(node) || ts.isNewExpression(node) || ts.isTaggedTemplateExpression(node)) {
        const call = databaseCall(checker, node);
        if (call) found.push(`${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}: ${call} in ${node.getText().split('\n')[0]}`);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return found;
}

/**
 * What the call reaches (`knex from`, `pg query`, `preparedQuery`), unless it is allowed: read from
 * where its callee is declared (the function, method or callable type), without resolving the call's
 * arguments, which would check every callback's body.
 */
function databaseCall(checker: ts.TypeChecker, node: ts.CallExpression | ts.NewExpression | ts.TaggedTemplateExpression): string | undefined {
  const callee = ts.isTaggedTemplateExpression(node) ? node.tag : node.expression;
  const name = ts.isPropertyAccessExpression(callee) ? callee.name.text : ts.isIdentifier(callee) ? callee.text : callee.getText();
  const type = checker.getTypeAtLocation(callee);
  const signatures = ts.isNewExpression(node) ? type.getConstructSignatures() : type.getCallSignatures();
  const declarations = [...signatures.map((s) => s.getDeclaration()), ...(type.getSymbol()?.getDeclarations() ?? [])].filter((d) => d !== undefined);
  for (const declaration of declarations) {
    const from = path.relative(root, declaration.getSourceFile().fileName).split(path.sep).join('/');
    const pkg = /^node_modules\/(?:@types\/)?(knex|pg|pg-pool)\//.exec(from)?.[1];
    if (pkg) {
      const group = pkg === 'knex' ? 'knex' : 'pg';
      return ALLOWED_CALLS[group].includes(name) ? undefined : `${group} ${name}`;
    }
    if (from === 'db/knex.ts' && STATEMENT_RUNNERS.includes(name)) return name;
  }
  return undefined;
}

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

  it('nothing outside server/ imports it (db/, workers/, scripts/, the root files), and db/ does not import workers/', () => {
    const offending = [...graph].flatMap(([file, deps]) =>
      deps.filter((d) => (layer(d) === 'server' && layer(file) !== 'server') || (layer(file) === 'db' && layer(d) === 'workers')).map((d) => `${file} → ${d}`),
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

  it('SQL lives in db/: nothing outside it calls the query builder, raw SQL, pg queries or db/knex.ts\'s statement runners', function () {
    // A type-checked program of the whole tree: seconds alone, far more on a machine busy with other work.
    this.timeout(180_000);
    expect(databaseCallsOutsideDb()).to.deep.equal([]);
  });
});
