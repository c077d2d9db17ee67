import type { Knex } from 'knex';

// Issue 14: the feed's subreddit filter (a case-insensitive substring of any of a snapshot's names)
// was a trigram index on the names joined by spaces. Every name the bench seeds contains "sub", so
// that index's bitmap read every posting of that trigram, and each row it found was rechecked by
// ILIKE through community_subreddits_text, an SQL function the planner cannot inline (it wraps the
// STABLE array_to_string): 11-14 ms to count 1,001 of a year's snapshots, about 1 ms on a small feed.
//
// Now the substring is matched against the distinct names instead (a few hundred rows, not a row per
// snapshot), and the snapshots holding any of those names come from a GIN index on the array:
// `subreddits && ARRAY(SELECT name FROM community_subreddit_names WHERE name ILIKE pattern)`. Exact,
// so no recheck: 6 ms for the same count.
//
// The names table holds every name any snapshot was ever stored with, exactly as stored (the match is
// ILIKE on the name and then equality with the stored element, so case and spelling need no
// normalising here). Names are only added: a name whose last snapshot was unshared, deleted or
// renamed stays, and matches no snapshot, so it costs a row in the name scan and nothing else.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE community_subreddit_names (name text PRIMARY KEY);
    -- A substring of a name, for a deployment with many distinct names (a few hundred are a seq scan).
    CREATE INDEX community_subreddit_names_trgm ON community_subreddit_names USING gin (name gin_trgm_ops);

    -- New names are inserted in order, so two transactions adding the same new names wait for each
    -- other instead of deadlocking. Inserts by statement, with the statement's new rows: one INSERT of the distinct names of a batch.
    CREATE FUNCTION community_subreddit_names_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO community_subreddit_names (name)
        SELECT DISTINCT n FROM added, unnest(added.subreddits) AS n WHERE n IS NOT NULL ORDER BY n
        ON CONFLICT DO NOTHING;
      RETURN NULL;
    END $$;
    CREATE TRIGGER community_subreddit_names_insert AFTER INSERT ON community_snapshots
      REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION community_subreddit_names_added();

    -- Updates by row, only when the names change (a transition table would fire on every like's update).
    CREATE FUNCTION community_subreddit_names_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO community_subreddit_names (name)
        SELECT DISTINCT n FROM unnest(NEW.subreddits) AS n WHERE n IS NOT NULL ORDER BY n
        ON CONFLICT DO NOTHING;
      RETURN NULL;
    END $$;
    CREATE TRIGGER community_subreddit_names_update AFTER UPDATE OF subreddits ON community_snapshots
      FOR EACH ROW WHEN (OLD.subreddits IS DISTINCT FROM NEW.subreddits) EXECUTE FUNCTION community_subreddit_names_changed();

    INSERT INTO community_subreddit_names (name)
      SELECT DISTINCT n FROM community_snapshots, unnest(subreddits) AS n WHERE n IS NOT NULL;

    CREATE INDEX community_feed_subreddits ON community_snapshots USING gin (subreddits) WHERE status = 'ready';
    DROP INDEX community_feed_subreddits_trgm;
    DROP FUNCTION community_subreddits_text(text[]);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE FUNCTION community_subreddits_text(text[]) RETURNS text
      LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$ SELECT array_to_string($1, ' ') $$;
    CREATE INDEX community_feed_subreddits_trgm ON community_snapshots
      USING gin (community_subreddits_text(subreddits) gin_trgm_ops) WHERE status = 'ready';
    DROP INDEX community_feed_subreddits;
    DROP TRIGGER community_subreddit_names_update ON community_snapshots;
    DROP TRIGGER community_subreddit_names_insert ON community_snapshots;
    DROP FUNCTION community_subreddit_names_changed();
    DROP FUNCTION community_subreddit_names_added();
    DROP TABLE community_subreddit_names;
  `);
}
