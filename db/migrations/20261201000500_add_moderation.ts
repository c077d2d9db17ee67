import type { Knex } from 'knex';

// Moderation (issue 13): an admin hides a snapshot from the feed, or removes it, and says why.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE community_snapshots
      ADD COLUMN is_hidden boolean NOT NULL DEFAULT false,
      ADD COLUMN hidden_at timestamptz NULL;

    -- The feed's count for everyone but admins is "ready and not hidden". The feed's partial indexes
    -- (WHERE status = 'ready') still order its pages, filtering the rare hidden row as they go, but a
    -- count of the whole feed would have to visit the heap for every row to read is_hidden: this
    -- index holds exactly the visible rows, so that count stays an index-only scan.
    CREATE INDEX community_feed_visible ON community_snapshots (id) WHERE status = 'ready' AND NOT is_hidden;

    -- The record outlives what it names: no foreign keys, so removing a snapshot, deleting a session
    -- or an admin's account keeps who did what, to which item, and why.
    CREATE TABLE moderation_audit (
      id bigserial PRIMARY KEY,
      admin_id text NOT NULL,
      action text NOT NULL CONSTRAINT moderation_audit_action_valid CHECK (action IN ('hide', 'unhide', 'remove')),
      snapshot_id integer NOT NULL,
      session_id integer NULL,
      snapshot_title text NULL,
      reason text NOT NULL CONSTRAINT moderation_audit_reason_length CHECK (char_length(reason) BETWEEN 1 AND 500),
      created_at timestamptz NOT NULL DEFAULT now()
    );
    -- GET /api/admin/audit: newest first, paged.
    CREATE INDEX moderation_audit_newest ON moderation_audit (created_at DESC, id DESC);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP TABLE moderation_audit;
    DROP INDEX community_feed_visible;
    ALTER TABLE community_snapshots DROP COLUMN hidden_at, DROP COLUMN is_hidden;
  `);
}
