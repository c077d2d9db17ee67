import type { Knex } from '../../db/knex.js';
import type { PlanNode } from '../../db/plans.js';

let probes = 0;

/**
 * The generic plan of a statement: the one a prepared statement (see `preparedQuery`) may keep
 * after its fifth run, made without the parameters' values and from whatever the statistics said
 * then. PREPAREd with `types` and EXPLAINed (not run) under `plan_cache_mode = force_generic_plan`,
 * in a transaction of its own, so the setting ends with it.
 */
export async function explainGenericPlan(knex: Knex, statement: { text: string; types: readonly string[] }): Promise<PlanNode> {
  // A name of its own each time: a failed EXPLAIN leaves its statement prepared on the connection.
  const name = `generic_plan_probe_${++probes}`;
  return knex.transaction(async (trx) => {
    await trx.raw('SET LOCAL plan_cache_mode = force_generic_plan');
    await trx.raw(`PREPARE ${name} (${statement.types.join(', ')}) AS ${statement.text}`);
    const { rows } = await trx.raw(`EXPLAIN (FORMAT JSON) EXECUTE ${name}(${statement.types.map(() => 'NULL').join(', ')})`);
    await trx.raw(`DEALLOCATE ${name}`);
    return (rows[0]['QUERY PLAN'] as [{ Plan: PlanNode }])[0].Plan;
  });
}
