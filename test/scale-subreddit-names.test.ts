import { expect } from 'chai';
import { communityQueries, listCommunity } from '../db/community.js';
import { explainStatement, tableScans, type PlanNode } from '../db/plans.js';
import { ownTestDatabase } from './helpers/database.js';

/**
 * The subreddit filter matches the pattern against community_subreddit_names, the distinct names
 * snapshots were stored with, kept by triggers on community_snapshots (issue 14). These check that
 * every way a name reaches a snapshot reaches the table, that the match is exact whatever the name's
 * case, and what removal leaves behind.
 */
describe('scale: the subreddit filter finds names through community_subreddit_names', function () {
  this.timeout(60_000);
  const db = ownTestDatabase({ poolMax: 1 });
  let category: number;
  let nextSession = 0;

  /** Ready snapshots with these names, inserted in one statement; their ids. */
  async function snapshots(...names: (string | null)[][]): Promise<number[]> {
    const sessions = (await db.knex('sessions')
      .insert(names.map(() => ({ user_id: 'user_names', title: `names ${++nextSession}`, subreddits: [], category_id: category, caption_theme: 'joi' })))
      .returning('id')) as { id: number }[];
    const rows = (await db.knex('community_snapshots')
      .insert(
        names.map((subreddits, i) => ({
          session_id: sessions[i]!.id,
          user_id: 'user_names',
          title: `names ${i}`,
          subreddits,
          category_id: category,
          interval_min: 3,
          interval_max: 10,
          transition: 'fade',
          caption_theme: 'joi',
          is_manual_mode: false,
          is_imported: true,
          status: 'ready',
          ready_at: db.knex.fn.now(),
        })),
      )
      .returning('id')) as { id: number }[];
    return rows.map((r) => r.id);
  }

  const found = async (subreddit: string): Promise<{ ids: number[]; total: number }> => {
    const { rows, total } = await listCommunity(db.knex, { sort: 'new', limit: 100, offset: 0, subreddit });
    return { ids: rows.map((r) => r.id).sort((a, b) => a - b), total };
  };
  const names = async (): Promise<string[]> => (await db.knex('community_subreddit_names').orderBy('name').pluck('name')) as string[];

  before(async () => {
    await db.knex('users').insert({ id: 'user_names', email: 'names@example.test', first_name: 'Names', password_hash: 'not-a-hash' });
    category = ((await db.knex('categories').where({ is_default: true }).first('id')) as { id: number }).id;
  });

  it('a batch insert adds each new name once, as stored (case kept, NULL elements skipped); the match is case-insensitive and literal', async () => {
    const [mixed, lower, both] = await snapshots(['Mixed_Case', 'pics'], ['mixed_case', null], ['pics', 'Mixed_Case', 'mixedXcase']);
    expect(await names()).to.deep.equal(['Mixed_Case', 'mixedXcase', 'mixed_case', 'pics']);
    // Either spelling is a case-insensitive match; "_" is a character, not LIKE's wildcard.
    expect(await found('XED_c')).to.deep.equal({ ids: [mixed!, lower!, both!], total: 3 });
    expect(await found('mixedx')).to.deep.equal({ ids: [both!], total: 1 });
    expect(await found('ED_CASE ')).to.deep.equal({ ids: [], total: 0 });
    expect(await found('nowhere')).to.deep.equal({ ids: [], total: 0 });
  });

  it('an update of a snapshot\'s names adds the new ones; other updates (likes, status) leave the table alone', async () => {
    const [id] = await snapshots(['before_update']);
    await db.knex('community_snapshots').where({ id }).update({ subreddits: ['after_update', 'before_update'] });
    expect(await names()).to.include.members(['after_update', 'before_update']);
    expect(await found('r_upd')).to.deep.equal({ ids: [id!], total: 1 });
    await db.knex('community_snapshots').where({ id }).update({ subreddits: ['Renamed'] });
    expect(await found('renamed')).to.deep.equal({ ids: [id!], total: 1 });
    // The names it no longer holds stay in the table and match nothing.
    expect(await found('after_up')).to.deep.equal({ ids: [], total: 0 });
    const before = await names();
    await db.knex('community_snapshots').where({ id }).update({ like_count: 3 });
    expect(await names()).to.deep.equal(before);
  });

  it('a removed snapshot (unshared, deleted) leaves its name behind, matching nothing', async () => {
    const [gone, hidden] = await snapshots(['only_here'], ['only_here']);
    await db.knex('community_snapshots').where({ id: gone }).delete();
    await db.knex('community_snapshots').where({ id: hidden }).update({ is_hidden: true });
    expect(await names()).to.include('only_here');
    expect(await found('only_h')).to.deep.equal({ ids: [], total: 0 });
    expect((await listCommunity(db.knex, { sort: 'new', limit: 10, offset: 0, subreddit: 'only_h', includeHidden: true })).rows.map((r) => r.id)).to.deep.equal([hidden]);
  });

  it('the filter is an index condition on community_feed_subreddits (GIN on the names array) once the table is large', async () => {
    // Enough snapshots (and names) that a sequential scan is not the cheap plan: 20,000 snapshots of 500 names.
    const { id: session } = (await db.knex.raw(`SELECT coalesce(max(id), 0) AS id FROM sessions`)).rows[0] as { id: number };
    await db.knex.raw(
      `WITH s AS (
         INSERT INTO sessions (user_id, title, subreddits, category_id, caption_theme)
         SELECT 'user_names', 'bulk ' || i, '{}', :category, 'joi' FROM generate_series(1, 20000) i RETURNING id)
       INSERT INTO community_snapshots (session_id, user_id, title, subreddits, category_id, interval_min, interval_max, transition,
                                        caption_theme, is_manual_mode, is_imported, status, ready_at)
       SELECT id, 'user_names', 'bulk', ARRAY['bulk' || (id % 500), 'bulk' || ((id * 7) % 500)], :category, 3, 10, 'fade', 'joi', false, false,
              'ready', now() - (id - :session) * interval '1 minute'
         FROM s`,
      { category, session },
    );
    await db.knex.raw('VACUUM ANALYZE community_snapshots, community_subreddit_names');
    expect((await names()).filter((n) => n.startsWith('bulk'))).to.have.length(500);
    const { count } = communityQueries(db.knex, { sort: 'new', limit: 20, offset: 0, subreddit: 'bulk17' });
    const { sql, bindings } = count.toSQL().toNative();
    const plan = await explainStatement(db.knex, { sql, bindings });
    expect(tableScans(plan)).to.include('Bitmap Heap Scan on community_snapshots');
    expect(tableScans(plan)).to.not.include('Seq Scan on community_snapshots');
    const nodes = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(nodes)];
    const index = nodes(plan).find((n) => n['Index Name'] === 'community_feed_subreddits');
    expect(index?.['Index Cond']).to.match(/^\(subreddits && \$\d+\)$/);
    // bulk17 and bulk170-179 (11 names of 500): the same as brute force.
    const { rows } = await db.knex.raw<{ rows: { n: number }[] }>(
      `SELECT count(*)::int AS n FROM community_snapshots WHERE status = 'ready' AND NOT is_hidden AND array_to_string(subreddits, ' ') ILIKE '%bulk17%'`,
    );
    expect(rows[0]!.n).to.be.within(21, 1000);
    expect((await found('bulk17')).total).to.equal(rows[0]!.n);
  });
});
