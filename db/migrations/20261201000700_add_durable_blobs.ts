import type { Knex } from 'knex';

// Durable media are content-addressed (docs/architecture.md §5): one blob per distinct sha256, recorded once,
// and every copy (a snapshot's item or thumbnail, a saved session's media or thumbnail) is a
// reference to it. Nothing deletes a referenced blob (ON DELETE RESTRICT); the collector deletes
// blobs unreferenced for a grace period, and looks references up by hash (hence an index on each).
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE durable_blobs (
      sha256 text PRIMARY KEY CONSTRAINT durable_blobs_sha256_valid CHECK (sha256 ~ '^[0-9a-f]{64}$'),
      blob_name text NOT NULL UNIQUE,
      content_type text NOT NULL,
      bytes bigint NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      -- Set by the collector when it finds nothing referencing the blob; cleared when something does again.
      unreferenced_since timestamptz NULL
    );
    CREATE INDEX durable_blobs_unreferenced ON durable_blobs (unreferenced_since) WHERE unreferenced_since IS NOT NULL;

    ALTER TABLE community_snapshot_media ADD COLUMN blob_sha256 text NULL REFERENCES durable_blobs (sha256) ON DELETE RESTRICT;
    ALTER TABLE session_media ADD COLUMN blob_sha256 text NULL REFERENCES durable_blobs (sha256) ON DELETE RESTRICT;
    ALTER TABLE community_snapshots ADD COLUMN thumbnail_sha256 text NULL REFERENCES durable_blobs (sha256) ON DELETE RESTRICT;
    ALTER TABLE sessions ADD COLUMN thumbnail_sha256 text NULL REFERENCES durable_blobs (sha256) ON DELETE RESTRICT;

    CREATE INDEX community_snapshot_media_blob_sha256 ON community_snapshot_media (blob_sha256);
    CREATE INDEX session_media_blob_sha256 ON session_media (blob_sha256);
    CREATE INDEX community_snapshots_thumbnail_sha256 ON community_snapshots (thumbnail_sha256);
    CREATE INDEX sessions_thumbnail_sha256 ON sessions (thumbnail_sha256);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE sessions DROP COLUMN thumbnail_sha256;
    ALTER TABLE community_snapshots DROP COLUMN thumbnail_sha256;
    ALTER TABLE session_media DROP COLUMN blob_sha256;
    ALTER TABLE community_snapshot_media DROP COLUMN blob_sha256;
    DROP TABLE durable_blobs;
  `);
}
