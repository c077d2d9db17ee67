import type { Knex } from 'knex';

// Likes (issue 13): one row per (user, snapshot), and the count kept on the snapshot so that the
// feed's "top" and "hot" orders read an indexed column instead of counting likes per row. The count
// is changed only in the transaction that inserts or deletes a like (db/community-likes.ts), with
// the snapshot row locked, so it always equals the likes table.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE community_likes (
      user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      snapshot_id integer NOT NULL REFERENCES community_snapshots (id) ON DELETE CASCADE,
      created_at timestamptz NOT NULL DEFAULT now(),
      -- User first: it answers "which of this page's items does the viewer like" and the users FK.
      PRIMARY KEY (user_id, snapshot_id)
    );
    -- The snapshots FK's cascade looks likes up by snapshot.
    CREATE INDEX community_likes_snapshot ON community_likes (snapshot_id);

    ALTER TABLE community_snapshots
      ADD COLUMN like_count integer NOT NULL DEFAULT 0,
      ADD CONSTRAINT community_snapshots_like_count CHECK (like_count >= 0);

    -- sort=top reads this in order; sort=hot reads its older candidates from it by a like_count bound.
    CREATE INDEX community_feed_likes ON community_snapshots (like_count DESC, ready_at DESC, id DESC) WHERE status = 'ready';
    -- "top" used to mean most media, with no votes to rank by; nothing orders by media_count now.
    DROP INDEX community_feed_top;

    -- The subreddit filter is a substring of any of the snapshot's subreddit names, as the reference
    -- matches it: ILIKE over the names joined by spaces (names never hold a space, so a match cannot
    -- span two). array_to_string is only STABLE, so an index needs this IMMUTABLE wrapper.
    CREATE FUNCTION community_subreddits_text(text[]) RETURNS text
      LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$ SELECT array_to_string($1, ' ') $$;
    CREATE INDEX community_feed_subreddits_trgm ON community_snapshots
      USING gin (community_subreddits_text(subreddits) gin_trgm_ops) WHERE status = 'ready';
    -- Whole-name containment (@>) was the filter before; a substring match supersedes it.
    DROP INDEX community_feed_subreddits;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE INDEX community_feed_subreddits ON community_snapshots USING gin (subreddits) WHERE status = 'ready';
    DROP INDEX community_feed_subreddits_trgm;
    DROP FUNCTION community_subreddits_text(text[]);
    CREATE INDEX community_feed_top ON community_snapshots (media_count DESC, ready_at DESC, id DESC) WHERE status = 'ready';
    DROP INDEX community_feed_likes;
    ALTER TABLE community_snapshots DROP CONSTRAINT community_snapshots_like_count, DROP COLUMN like_count;
    DROP TABLE community_likes;
  `);
}
