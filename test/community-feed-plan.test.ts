import { expect } from 'chai';
import { COMMUNITY_SORTS, communityQueries, listCommunity, type CommunityFilter } from '../db/community.js';
import { createKnex, type Knex } from '../db/knex.js';
import { explainStatement, statementsOf, type PlanNode, type SentStatement } from '../db/plans.js';
import { ownTestDatabase } from './helpers/database.js';

const SNAPSHOTS = 50_000;
const USERS = 500;
const QUIET_USERS = 20_000;
const CATEGORIES = 20;
const SUBREDDITS = 200;
const WORDS = ['aurora', 'harbor', 'meadow', 'canyon', 'glacier', 'lantern', 'orchid', 'tundra', 'willow', 'zephyr'];

/**
 * A feed as it looks in production: nearly every snapshot ready (pending ones are a passing state),
 * while each filter is selective: one creator of 500, one category of 20, one subreddit of 200, one
 * title word of 10 (each title also carries a unique number). An index cannot beat a sequential
 * scan for a filter that keeps most of the table, so selective filters are what the plans must serve.
 */
async function seedFeed(knex: Knex): Promise<void> {
  await knex.raw(
    `INSERT INTO users (id, email, first_name, password_hash)
     SELECT 'user_feed' || i, 'feed' || i || '@example.test', 'Feeder ' || i, 'not-a-hash' FROM generate_series(1, ?) i`,
    [USERS],
  );
  // Most accounts share nothing: the users table is much larger than the set of creators, so a page
  // that read all of it to find its 20 creators would show here.
  await knex.raw(
    `INSERT INTO users (id, email, first_name, password_hash)
     SELECT 'user_quiet' || i, 'quiet' || i || '@example.test', 'Quiet ' || i, 'not-a-hash' FROM generate_series(1, ?) i`,
    [QUIET_USERS],
  );
  await knex.raw(`INSERT INTO categories (slug, name) SELECT 'feed-' || i, 'Feed ' || i FROM generate_series(1, ?) i`, [CATEGORIES]);
  // One statement: the sessions, then a snapshot of each. Ready times are scattered (7919 is prime)
  // so the table's physical order does not happen to match the feed's order.
  await knex.raw(
    `WITH c AS (SELECT array_agg(id ORDER BY id) AS ids FROM categories WHERE slug LIKE 'feed-%'),
          s AS (
            INSERT INTO sessions (user_id, title, subreddits, category_id, caption_theme)
            SELECT 'user_feed' || (1 + i % :users), (CAST(:words AS text[]))[1 + i % 10] || ' session ' || i,
                   ARRAY['sub' || (i % :subreddits), 'sub' || ((i * 7) % :subreddits)], c.ids[1 + i % :categories], 'classic'
              FROM generate_series(1, :snapshots) i, c
            RETURNING *)
     INSERT INTO community_snapshots (session_id, user_id, title, subreddits, category_id, interval_min, interval_max, transition,
                                      caption_theme, is_manual_mode, is_imported, status, media_count, copied_count, ready_at, like_count)
     SELECT id, user_id, title, subreddits, category_id, interval_min, interval_max, transition, caption_theme, is_manual_mode, is_imported,
            CASE WHEN id % 20 = 0 THEN 'pending' ELSE 'ready' END, id % 37, CASE WHEN id % 20 = 0 THEN 0 ELSE id % 37 END,
            CASE WHEN id % 20 = 0 THEN NULL ELSE now() - ((id * 7919) % :snapshots) * interval '1 minute' END,
            -- Most snapshots unliked, a few liked a lot: the counts as the feed's orders read them.
            CASE WHEN id % 9 = 0 THEN (id * 31) % 500 ELSE id % 3 END
       FROM s`,
    { users: USERS, words: WORDS, subreddits: SUBREDDITS, categories: CATEGORIES, snapshots: SNAPSHOTS },
  );
  // VACUUM as well as ANALYZE: an index-only scan (the count) needs the visibility map a vacuum writes.
  await knex.raw('VACUUM ANALYZE users, categories, sessions, community_snapshots');
}

/** Every node of the plan that reads `table`, as "<node type> <index or indexes>[ (<index condition>)]". */
function scansOf(node: PlanNode, table: string): string[] {
  // A bitmap heap scan names no index itself: its bitmap index scans below it do.
  const indexes = (n: PlanNode): string[] =>
    n['Index Name'] ? [n['Index Name'] + (n['Index Cond'] ? ` (${n['Index Cond']})` : '')] : (n.Plans ?? []).flatMap(indexes);
  const own = node['Relation Name'] === table ? [[node['Node Type'], ...indexes(node)].join(' ')] : [];
  return [...own, ...(node.Plans ?? []).flatMap((child) => scansOf(child, table))];
}

/** The plan's reads of community_snapshots and of users (a page joins its creators), parameters kept as parameters. */
async function explainSent(knex: Knex, statement: SentStatement): Promise<{ snapshots: string[]; users: string[] }> {
  const plan = await explainStatement(knex, statement);
  return { snapshots: scansOf(plan, 'community_snapshots'), users: scansOf(plan, 'users') };
}

/** A built query, EXPLAINed as knex would send it. */
const explain = (knex: Knex, query: Knex.QueryBuilder) => {
  const { sql, bindings } = query.toSQL().toNative();
  return explainSent(knex, { sql, bindings });
};

/** The SELECTs listCommunity sends for `feed`, in order (its EXPLAIN for an estimate left out). */
async function sentBy(knex: Knex, feed: CommunityFilter): Promise<SentStatement[]> {
  return (await statementsOf(knex, () => listCommunity(knex, feed))).filter((s) => /^\s*(select|with)/i.test(s.sql));
}

/**
 * The ids of every visible ready snapshot matching `filter`'s subreddit, search and category, in the
 * order `keys`, written from docs/api.md §7 rather than from the feed's queries: a name matches when the
 * pattern is a case-insensitive substring of it; a search, of the title or of the creator's name.
 */
async function bruteForce(knex: Knex, filter: Partial<CommunityFilter>, keys: string): Promise<number[]> {
  const like = (value: string | undefined) => (value === undefined ? null : `%${value.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  const { rows } = await knex.raw<{ rows: { id: number }[] }>(
    `SELECT s.id FROM community_snapshots s JOIN users u ON u.id = s.user_id
      WHERE s.status = 'ready' AND NOT s.is_hidden
        AND (CAST(:subreddit AS text) IS NULL OR EXISTS (SELECT 1 FROM unnest(s.subreddits) AS name WHERE name ILIKE :subreddit))
        AND (CAST(:search AS text) IS NULL OR s.title ILIKE :search OR concat_ws(' ', u.first_name, u.last_name) ILIKE :search)
        AND (CAST(:category AS int) IS NULL OR s.category_id = :category)
      ORDER BY ${keys}`,
    { subreddit: like(filter.subreddit), search: like(filter.search), category: filter.categoryId ?? null },
  );
  return rows.map((r) => r.id);
}

describe('community feed: every query reads its snapshots through an index', function () {
  this.timeout(60_000);
  // A database of its own: 50,000 snapshots would change every other suite's feed.
  const db = ownTestDatabase({ poolMax: 1 });
  let categoryId: number;

  before(async () => {
    await seedFeed(db.knex);
    categoryId = ((await db.knex('categories').where({ slug: 'feed-3' }).first('id')) as { id: number }).id;
  });

  const filters: Record<string, () => Partial<CommunityFilter>> = {
    'no filter': () => ({}),
    creatorId: () => ({ creatorId: 'user_feed42' }),
    categoryId: () => ({ categoryId }),
    categorySlug: () => ({ categorySlug: 'feed-3' }),
    'subreddit (a substring of a name)': () => ({ subreddit: 'sub17' }),
    'search (title)': () => ({ search: 'glacier' }),
    'search (creator name)': () => ({ search: 'Feeder 42' }),
    creator: () => ({ creator: 'feeder 42' }),
    'contentType=sessions, logged in': () => ({ contentType: 'sessions', viewerId: 'user_feed7' }),
  };

  for (const sort of COMMUNITY_SORTS) {
    for (const [name, filter] of Object.entries(filters)) {
      it(`sort=${sort}, ${name}: no statement of the feed scans community_snapshots (or users) sequentially`, async () => {
        const feed: CommunityFilter = { sort, limit: 20, offset: 0, ...filter() };
        // The fixture matches each filter more than a page's worth, so every plan has real work to do.
        const { rows, total } = await listCommunity(db.knex, feed);
        expect(rows).to.have.length(20);
        expect(total).to.be.above(20);
        // What the feed sent (its lookups, page and count), and the page and count as built.
        const { page, count } = communityQueries(db.knex, feed);
        const sent = await sentBy(db.knex, feed);
        const explained = [
          ...(await Promise.all(sent.map(async (statement, i) => [`statement ${i + 1}`, await explainSent(db.knex, statement)] as const))),
          ['page', await explain(db.knex, page)],
          ['count', await explain(db.knex, count)],
        ] as const;
        // Every statement but the filter's lookups (creators, subreddit names) reads snapshots.
        expect(explained.filter(([, e]) => e.snapshots.length > 0)).to.have.length(explained.length - (sent[0]?.sql.startsWith('SELECT ARRAY(') ? 1 : 0));
        for (const [query, { snapshots, users }] of explained) {
          expect(snapshots.filter((s) => s.startsWith('Seq Scan')), `${query}: ${snapshots.join(', ')}`).to.deep.equal([]);
          // The page's creators are looked up for its rows only, not read whole.
          expect(users.filter((s) => s.startsWith('Seq Scan')), `${query} reads users: ${users.join(', ')}`).to.deep.equal([]);
        }
      });
    }
  }

  it('sort=hot: candidates from the indexes alone (the newest, and older ones from the like-count bound); only the page is read by id', async () => {
    const statement = (await sentBy(db.knex, { sort: 'hot', limit: 20, offset: 0 })).find((s) => s.sql.includes('hot_recent'));
    const { snapshots } = await explainSent(db.knex, statement!);
    // Index-only: the window's 1,000 rows (on as many heap pages in a large feed) are never fetched.
    expect(snapshots.filter((s) => s.includes('community_feed_new')), snapshots.join(', ')).to.deep.equal(['Index Only Scan community_feed_new']);
    const older = snapshots.filter((s) => s.includes('community_feed_likes'));
    expect(older, snapshots.join(', ')).to.have.length(1);
    // Older than the window: only what reaches the bound, an index condition on like_count.
    expect(older[0]).to.match(/^Index Only Scan community_feed_likes \(.*\(like_count >= \$\d+\)/);
    // The ranked page's rows, by primary key.
    const rest = snapshots.filter((s) => !s.includes('community_feed_'));
    expect(rest, snapshots.join(', ')).to.have.length(1);
    expect(rest[0], rest[0]).to.match(/^Index Scan community_snapshots_pkey \(\(?id = /);
  });

  // A substring filter matching many snapshots: the page is the first matching entries of the
  // order's own index, which carries the filtered columns, so the walk reads no table row it passes
  // and stops at the page (not every match sorted); only the page's rows are read, by id. Counted
  // above the bound once, the filter is not counted again while its estimate is kept.
  for (const [sort, index] of [['new', 'community_feed_new'], ['top', 'community_feed_likes']] as const) {
    for (const filter of [{ subreddit: 'sub17' }, { search: 'glacier' }]) {
      it(`sort=${sort}, ${JSON.stringify(filter)}: each page an index-only walk of ${index}_filters; counted once on an index`, async () => {
        // A handle of its own keeps no estimate yet, as in a web process that has just started.
        const fresh = createKnex({ databaseUrl: db.url, poolMax: 1 });
        try {
          const reads = async (offset: number) => {
            const sent = await sentBy(fresh, { sort, limit: 20, offset, ...filter });
            const explained = await Promise.all(sent.map(async (s) => ({ sql: s.sql, ...(await explainSent(fresh, s)) })));
            return { page: explained.find((e) => e.sql.includes('creator_first_name'))!, counts: explained.filter((e) => e.sql.includes('count(*)')) };
          };
          const first = await reads(0);
          expect(first.page.snapshots).to.deep.equal([`Index Only Scan ${index}_filters`, 'Index Scan community_snapshots_pkey ((id = s_1.id))']);
          expect(first.counts).to.have.length(1);
          expect(first.counts[0]!.snapshots.filter((s) => s.startsWith('Seq Scan'))).to.deep.equal([]);
          const next = await reads(20);
          expect(next.page.snapshots).to.deep.equal(first.page.snapshots);
          expect(next.counts).to.deep.equal([]);
        } finally {
          await fresh.destroy();
        }
      });
    }
  }

  it('a substring filter matching few snapshots: its matches read through its own indexes, not a walk of the whole feed', async () => {
    const sent = await sentBy(db.knex, { sort: 'new', limit: 20, offset: 0, subreddit: 'sub17', categoryId });
    const explained = await Promise.all(sent.map(async (s) => ({ sql: s.sql, ...(await explainSent(db.knex, s)) })));
    const page = explained.find((e) => e.sql.includes('creator_first_name'))!;
    expect(page.snapshots.join(', ')).to.not.include('community_feed_new');
    expect(page.snapshots.join(', ')).to.match(/community_feed_subreddits \(\(subreddits && \$\d+\)\)|community_snapshots_category/);
  });

  // The substring filters (a walk of the order's index, or every match read through the filter's
  // index and sorted, as the planner chooses) against brute force over the whole table: the same
  // pages and the same total.
  for (const sort of ['new', 'top'] as const) {
    for (const [name, filter] of Object.entries({
      'many matches': () => ({ subreddit: 'sub17' }),
      'few matches': () => ({ subreddit: 'sub17', categoryId }),
      'search, creator name': () => ({ search: 'Feeder 42' }),
      // Titles: one word of 10 (5,000 matches, in any case), a selective one (111), a word in a
      // category (every `meadow` title's snapshot is in feed-3 or feed-13: 2,500), none.
      'search, common': () => ({ search: 'GLACIER' }),
      'search, selective': () => ({ search: 'glacier session 12' }),
      'search, common in a category': () => ({ search: 'meadow', categoryId }),
      'search, no match': () => ({ search: 'glacier session 0' }),
    })) {
      it(`sort=${sort}, ${name}: pages and total are exactly those of all matching snapshots`, async () => {
        const f: Partial<CommunityFilter> = filter();
        const keys = sort === 'new' ? 'ready_at DESC, id DESC' : 'like_count DESC, ready_at DESC, id DESC';
        const ids = await bruteForce(db.knex, f, keys.replace(/(\w+) DESC/g, 's.$1 DESC'));
        // Each case has pages to compare, but the one meant to match nothing.
        expect(ids.length, 'matches by brute force').to.be.above(name === 'search, no match' ? -1 : 20);
        // 20 from the start (the walk when matches are many), and deeper than the walk reaches.
        for (const [limit, offset] of [[20, 0], [100, 100], [50, 4990]] as const) {
          const page = await listCommunity(db.knex, { sort, limit, offset, ...f });
          expect(page.rows.map((r) => r.id), `limit ${limit} offset ${offset}`).to.deep.equal(ids.slice(offset, offset + limit));
          if (ids.length <= 1000) expect(page.total).to.equal(ids.length);
          else expect(page.total).to.be.above(1000);
        }
      });
    }
  }

  // hot reads a bounded set of candidates; its pages must still be exactly the formula's order over
  // every matching snapshot, here computed by brute force over the whole table.
  for (const [name, filter] of Object.entries({ 'no filter': {}, 'search (title)': { search: 'glacier' } })) {
    it(`sort=hot, ${name}: the first pages are exactly the formula's order over all ready snapshots`, async () => {
      const pattern = (filter as { search?: string }).search;
      // One transaction: now() is its start, so every query here ages the snapshots alike.
      await db.knex.transaction(async (trx) => {
        const { rows } = await trx.raw<{ rows: { id: number }[] }>(
          `SELECT id FROM community_snapshots
            WHERE status = 'ready' AND (CAST(? AS text) IS NULL OR title ILIKE '%' || ? || '%')
            ORDER BY (like_count + 1) / power(greatest(date_part('epoch', now() - ready_at), 0) / 3600 + 2, 1.5) DESC, ready_at DESC, id DESC
            LIMIT 300`,
          [pattern ?? null, pattern ?? null],
        );
        for (const [limit, offset] of [[20, 0], [100, 100], [50, 250]] as const) {
          const page = await listCommunity(trx, { sort: 'hot', limit, offset, ...filter });
          expect(page.rows.map((r) => r.id), `limit ${limit} offset ${offset}`).to.deep.equal(rows.slice(offset, offset + limit).map((r) => r.id));
        }
      });
    });
  }
});
