import { expect } from 'chai';
import type { PlanNode } from '../db/plans.js';
import { explainGenericPlan } from './helpers/plans.js';
import { THUMBNAIL_WRITE } from '../db/sessions.js';
import { ownTestDatabase } from './helpers/database.js';

/** Every node of a plan that scans `sessions` (not the update itself), with what it reads it by. */
function sessionScans(node: PlanNode): { type: string; by: string }[] {
  const own = node['Relation Name'] === 'sessions' && node['Node Type'].endsWith('Scan') ? [{ type: node['Node Type'], by: `${node['Index Cond'] ?? ''} ${node.Filter ?? ''}`.trim() }] : [];
  return [...own, ...(node.Plans ?? []).flatMap(sessionScans)];
}

/**
 * The thumbnail job's last write is a prepared statement, so after five runs PostgreSQL may keep a
 * generic plan, made without the parameters' values. On a small sessions table (a new database, the
 * bench's) that plan once read every session for each job (issue 14: a 0.5 ms write took 15–37 ms
 * on 600 sessions). Whatever the statistics say, it reads one row by its id.
 */
describe('the thumbnail write reads the session by its id, in any plan', function () {
  this.timeout(60_000);
  const db = ownTestDatabase({ poolMax: 1 });

  it('its generic plan scans sessions only by id, before and after the table is analysed', async () => {
    const user = await db.knex('users').insert({ id: 'user_plan', email: 'plan@example.test', password_hash: 'not-a-hash' }).returning('id');
    const category = (await db.knex('categories').where({ is_default: true }).first('id')) as { id: number };
    await db.knex('sessions').insert(Array.from({ length: 600 }, (_, i) => ({ user_id: user[0]!.id, title: `s${i}`, category_id: category.id, caption_theme: 'joi' })));

    for (const when of ['unanalysed', 'analysed']) {
      if (when === 'analysed') await db.knex.raw('ANALYZE sessions');
      const scans = sessionScans(await explainGenericPlan(db.knex, THUMBNAIL_WRITE));
      expect(scans, when).to.have.length(2);
      for (const scan of scans) expect(scan.by, `${when}: ${scan.type} on sessions`).to.match(/\(id = \$3\)/);
    }
  });
});
