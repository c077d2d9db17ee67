import type { Knex } from 'knex';

// Issue 12: share links, and saved copies of community items.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE share_codes (
      code uuid PRIMARY KEY,
      session_id integer NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
      created_at timestamptz NOT NULL DEFAULT now(),
      revoked_at timestamptz NULL
    );
    -- One live code per session: two concurrent shares insert with ON CONFLICT DO NOTHING against
    -- this index and both read the one that won.
    CREATE UNIQUE INDEX share_codes_one_live ON share_codes (session_id) WHERE revoked_at IS NULL;
    -- Revoked codes stay until their session goes: the cascade finds them (all of them) by this index.
    CREATE INDEX share_codes_session ON share_codes (session_id);

    -- A saved copy names what it was saved from: 'community:<snapshot id>' (docs/architecture.md §4).
    ALTER TABLE sessions ADD COLUMN import_url text NULL;
    -- One saved copy per user and item, also under concurrent saves (INSERT ... ON CONFLICT DO NOTHING).
    CREATE UNIQUE INDEX sessions_community_saves ON sessions (user_id, import_url) WHERE import_source = 'community';
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP INDEX sessions_community_saves;
    ALTER TABLE sessions DROP COLUMN import_url;
    DROP TABLE share_codes;
  `);
}
