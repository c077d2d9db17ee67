import type { Knex } from './knex.js';

/** A node of `EXPLAIN (FORMAT JSON)`'s plan, as far as reading which tables it scans goes. */
export interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Filter?: string;
  'Plan Rows'?: number;
  Plans?: PlanNode[];
}

/** A statement as knex sent it: PostgreSQL's own text (`$1` placeholders) and its parameters. */
export interface SentStatement {
  sql: string;
  bindings: readonly unknown[];
}

/**
 * Runs `work` and returns every statement it sent through `knex` (its `query` event), so a test or
 * the bench can EXPLAIN exactly what a db/ function runs.
 */
export async function statementsOf(knex: Knex, work: () => Promise<unknown>): Promise<SentStatement[]> {
  const seen: SentStatement[] = [];
  const listen = (q: { sql: string; bindings?: readonly unknown[] }): void => void seen.push({ sql: q.sql, bindings: q.bindings ?? [] });
  knex.on('query', listen);
  try {
    await work();
  } finally {
    knex.removeListener('query', listen);
  }
  return seen;
}

type PgConnection = { query(text: string, values: readonly unknown[]): Promise<{ rows: Record<string, unknown>[] }> };

/**
 * The plan of a sent statement, parameters kept as parameters (a value inlined could get a plan the
 * application never does). `format: 'text'` gives EXPLAIN's lines joined.
 */
export async function explainStatement(knex: Knex, statement: SentStatement): Promise<PlanNode>;
export async function explainStatement(knex: Knex, statement: SentStatement, format: 'text'): Promise<string>;
export async function explainStatement(knex: Knex, statement: SentStatement, format: 'json' | 'text' = 'json'): Promise<PlanNode | string> {
  // Through the driver: the text already has `$n` placeholders, which knex.raw would not take.
  const client = knex.client as { acquireConnection(): Promise<PgConnection>; releaseConnection(c: PgConnection): Promise<void> };
  const connection = await client.acquireConnection();
  try {
    const { rows } = await connection.query(`EXPLAIN (FORMAT ${format === 'json' ? 'JSON' : 'TEXT'}) ${statement.sql}`, statement.bindings);
    if (format === 'text') return rows.map((r) => String(r['QUERY PLAN'])).join('\n');
    return (rows[0]!['QUERY PLAN'] as [{ Plan: PlanNode }])[0].Plan;
  } finally {
    await client.releaseConnection(connection);
  }
}

/** Every node of a plan that reads a table, as "<node type> on <table>[ using <index>]". */
export function tableScans(node: PlanNode): string[] {
  const own = node['Relation Name'] ? [`${node['Node Type']} on ${node['Relation Name']}${node['Index Name'] ? ` using ${node['Index Name']}` : ''}`] : [];
  return [...own, ...(node.Plans ?? []).flatMap(tableScans)];
}
