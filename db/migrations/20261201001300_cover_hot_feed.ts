import type { Knex } from 'knex';

// Issue 14 item 1: a `hot` page ranks the newest 1,000 ready snapshots (and the older ones liked
// enough to compete) by like_count and ready_at. Read through community_feed_new and
// community_feed_likes as they were, each of those rows was a heap fetch: on a year of snapshots
// they lie on 1,000 different pages, against about 30 on a small feed, so the page cost grew with
// the table. With like_count and is_hidden carried in the indexes (INCLUDE, not keys: the order is
// unchanged), the ranking is an index-only scan of a few leaf pages, and only the page's own rows
// are read from the heap. like_count is a key of community_feed_likes already, so a like never was
// a HOT update: carrying it here adds no write.
//
// Both are built under new names first, then swapped in, in one transaction. A plain CREATE INDEX
// blocks writes to community_snapshots while it builds (each of the two took about 0.1 s for the
// bench's 100,000 snapshots; CONCURRENTLY cannot run in a migration's transaction); the DROPs take
// the lock that also blocks the feed's reads, so they come last, just before COMMIT.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE INDEX community_feed_new_covering ON community_snapshots (ready_at DESC, id DESC) INCLUDE (like_count, is_hidden) WHERE status = 'ready';
    CREATE INDEX community_feed_likes_covering ON community_snapshots (like_count DESC, ready_at DESC, id DESC) INCLUDE (is_hidden) WHERE status = 'ready';
    DROP INDEX community_feed_new;
    ALTER INDEX community_feed_new_covering RENAME TO community_feed_new;
    DROP INDEX community_feed_likes;
    ALTER INDEX community_feed_likes_covering RENAME TO community_feed_likes;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP INDEX community_feed_new;
    CREATE INDEX community_feed_new ON community_snapshots (ready_at DESC, id DESC) WHERE status = 'ready';
    DROP INDEX community_feed_likes;
    CREATE INDEX community_feed_likes ON community_snapshots (like_count DESC, ready_at DESC, id DESC) WHERE status = 'ready';
  `);
}
