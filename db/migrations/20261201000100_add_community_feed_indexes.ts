import type { Knex } from 'knex';

// Every feed query (db/community.ts) filters status = 'ready', so the feed's indexes hold ready rows
// only: pending, copying and failed snapshots never cost the feed an index entry. The keys end in
// the feed's order (ready_at DESC, id DESC), so a page is read in order and stops at its LIMIT.
export async function up(knex: Knex): Promise<void> {
  // pg_trgm ships with PostgreSQL's contrib and is a trusted extension: the database owner may create it.
  await knex.raw('CREATE EXTENSION IF NOT EXISTS pg_trgm');
  await knex.raw(`
    CREATE INDEX community_feed_new ON community_snapshots (ready_at DESC, id DESC) WHERE status = 'ready';
    CREATE INDEX community_feed_top ON community_snapshots (media_count DESC, ready_at DESC, id DESC) WHERE status = 'ready';
    -- Not partial, with status second: these also serve the foreign keys' lookups (a deleted user or
    -- category scans its snapshots whatever their status), and a feed query's equality on both
    -- leading columns still reads the rest in feed order.
    CREATE INDEX community_snapshots_user ON community_snapshots (user_id, status, ready_at DESC, id DESC);
    CREATE INDEX community_snapshots_category ON community_snapshots (category_id, status, ready_at DESC, id DESC);
    -- The subreddit filter is "subreddits @> ARRAY[name]", which GIN answers ("name = ANY(subreddits)" it cannot).
    CREATE INDEX community_feed_subreddits ON community_snapshots USING gin (subreddits) WHERE status = 'ready';
    -- The search filter is "title ILIKE '%words%'": only trigrams index a match in the middle of a title.
    CREATE INDEX community_feed_title_trgm ON community_snapshots USING gin (title gin_trgm_ops) WHERE status = 'ready';
    -- Nothing orders snapshots by created_at; the admin list filters by status and orders by id.
    DROP INDEX community_snapshots_status;
    CREATE INDEX community_snapshots_status ON community_snapshots (status, id DESC);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP INDEX community_snapshots_status;
    CREATE INDEX community_snapshots_status ON community_snapshots (status, created_at DESC);
    DROP INDEX community_feed_title_trgm;
    DROP INDEX community_feed_subreddits;
    DROP INDEX community_snapshots_category;
    DROP INDEX community_snapshots_user;
    DROP INDEX community_feed_top;
    DROP INDEX community_feed_new;
  `);
  // RESTRICT: an index or column of anyone else's that still uses pg_trgm keeps the extension.
  await knex.raw(`
    DO $$
    BEGIN
      DROP EXTENSION IF EXISTS pg_trgm RESTRICT;
    EXCEPTION WHEN dependent_objects_still_exist THEN
      NULL;
    END $$`);
}
