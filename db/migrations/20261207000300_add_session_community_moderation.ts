import type { Knex } from 'knex';

// Moderation belongs to the session, not to its snapshot (issue 22): unsharing deletes the snapshot,
// so a hide or a removal recorded only there was undone by sharing again. The session now carries
// the moderation in force (`hidden`: every new snapshot is hidden; `removed`: sharing is refused
// until an admin lifts it), with the moderator's reason and time for its owner to read.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE sessions
      ADD COLUMN community_moderation text NULL CONSTRAINT sessions_community_moderation_valid CHECK (community_moderation IN ('hidden', 'removed')),
      ADD COLUMN community_moderation_reason text NULL,
      ADD COLUMN community_moderated_at timestamptz NULL,
      ADD CONSTRAINT sessions_community_moderation_complete CHECK (
        (community_moderation IS NULL) = (community_moderation_reason IS NULL) AND (community_moderation IS NULL) = (community_moderated_at IS NULL));

    -- A lift undoes a moderation of the session, so the audit says which.
    ALTER TABLE moderation_audit
      DROP CONSTRAINT moderation_audit_action_valid,
      ADD CONSTRAINT moderation_audit_action_valid CHECK (action IN ('hide', 'unhide', 'remove', 'lift'));
    -- A lift names the snapshot whose moderation it lifts: the session's latest hide or removal.
    CREATE INDEX moderation_audit_session ON moderation_audit (session_id, id DESC) WHERE session_id IS NOT NULL;

    -- What the audit says is in force now: the latest hide or removal of each session, unless an
    -- unhide came after it.
    UPDATE sessions s
       SET community_moderation = CASE a.action WHEN 'hide' THEN 'hidden' ELSE 'removed' END,
           community_moderation_reason = a.reason,
           community_moderated_at = a.created_at
      FROM (SELECT DISTINCT ON (session_id) session_id, action, reason, created_at
              FROM moderation_audit WHERE session_id IS NOT NULL
             ORDER BY session_id, id DESC) a
     WHERE a.session_id = s.id AND a.action IN ('hide', 'remove');
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DELETE FROM moderation_audit WHERE action = 'lift';
    DROP INDEX moderation_audit_session;
    ALTER TABLE moderation_audit
      DROP CONSTRAINT moderation_audit_action_valid,
      ADD CONSTRAINT moderation_audit_action_valid CHECK (action IN ('hide', 'unhide', 'remove'));
    ALTER TABLE sessions
      DROP CONSTRAINT sessions_community_moderation_complete,
      DROP COLUMN community_moderated_at,
      DROP COLUMN community_moderation_reason,
      DROP COLUMN community_moderation;
  `);
}
