import type { Knex } from 'knex';

// Issue 25 §3: a feed page filtered by `search` or `subreddit` is the first rows of the order that
// match. These two indexes read ready snapshots in the orders of community_feed_new and
// community_feed_likes and carry every column those filters test (INCLUDE, not keys), so that walk
// is an index-only scan that stops at the page, instead of fetching each row it passes from the
// table (2,000 rows for a search matching 1 % of the feed) or sorting every match (the trigram
// bitmap's 1,000 rows on a year of snapshots). They are indexes of their own rather than wider
// versions of those two: widened, community_feed_new was no longer the cheapest way to count the
// ready snapshots, and the overview's count became a sequential scan. like_count was a key of
// community_feed_likes already, so no write that was a HOT update stops being one.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE INDEX community_feed_new_filters ON community_snapshots (ready_at DESC, id DESC)
      INCLUDE (is_hidden, user_id, title, subreddits) WHERE status = 'ready';
    CREATE INDEX community_feed_likes_filters ON community_snapshots (like_count DESC, ready_at DESC, id DESC)
      INCLUDE (is_hidden, user_id, title, subreddits) WHERE status = 'ready';
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX community_feed_likes_filters; DROP INDEX community_feed_new_filters`);
}
