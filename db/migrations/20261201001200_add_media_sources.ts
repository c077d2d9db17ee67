import type { Knex } from 'knex';

// What a snapshot copy last fetched from each media URL (issue 14): the bytes' hash, the strong
// ETag the source served them with, and until when the source said they stay current (its
// Cache-Control max-age). A later copy of the same URL reuses the stored blob without asking while
// that lasts, then asks with If-None-Match and, on 304, reuses it too: no byte is downloaded or
// uploaded either way.
// The row goes with its blob: when the collector deletes the blob's row, this one is deleted too,
// so a source is never revalidated against bytes that are no longer stored.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE media_sources (
      source_url text PRIMARY KEY,
      sha256 text NOT NULL REFERENCES durable_blobs (sha256) ON DELETE CASCADE,
      etag text NOT NULL,
      content_type text NOT NULL,
      fetched_at timestamptz NOT NULL DEFAULT now(),
      fresh_until timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX media_sources_sha256 ON media_sources (sha256);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE media_sources');
}
