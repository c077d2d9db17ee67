import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // A snapshot copies the session's metadata at share time; its media are copied to durable
  // blob storage by a job. Unsharing or deleting the session deletes the row (one live snapshot per session).
  await knex.schema.createTable('community_snapshots', (t) => {
    t.increments('id').primary();
    t.integer('session_id').notNullable().unique().references('sessions.id').onDelete('CASCADE');
    t.text('user_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('title').notNullable();
    t.specificType('subreddits', 'text[]').notNullable();
    t.integer('category_id').notNullable().references('categories.id');
    t.integer('interval_min').notNullable();
    t.integer('interval_max').notNullable();
    t.text('transition').notNullable();
    t.text('caption_theme').notNullable();
    t.text('ai_prompt');
    t.boolean('is_manual_mode').notNullable();
    t.boolean('is_imported').notNullable();
    t.text('source_thumbnail');
    t.text('thumbnail_blob_name');
    t.text('thumbnail_url');
    t.text('status').notNullable().defaultTo('pending');
    t.integer('media_count').notNullable().defaultTo(0);
    t.integer('copied_count').notNullable().defaultTo(0);
    t.bigInteger('bytes_copied').notNullable().defaultTo(0);
    t.text('last_error');
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('ready_at', { useTz: true });
  });
  await knex.raw(`
    ALTER TABLE community_snapshots
      ADD CONSTRAINT community_snapshots_status_valid CHECK (status IN ('pending', 'copying', 'ready', 'failed')),
      ADD CONSTRAINT community_snapshots_counts CHECK (copied_count >= 0 AND media_count >= 0 AND copied_count <= media_count);
    CREATE INDEX community_snapshots_status ON community_snapshots (status, created_at DESC);
  `);

  await knex.schema.createTable('community_snapshot_media', (t) => {
    t.increments('id').primary();
    t.integer('snapshot_id').notNullable().references('community_snapshots.id').onDelete('CASCADE');
    t.integer('source_media_id');
    t.text('source_url').notNullable();
    t.text('type').notNullable();
    t.text('caption');
    t.text('reddit_post_id');
    t.text('reddit_post_url');
    t.text('subreddit');
    t.text('blob_name');
    t.text('blob_url');
    t.text('content_type');
    t.bigInteger('bytes');
    t.text('checksum');
    t.integer('order').notNullable();
    t.timestamp('copied_at', { useTz: true });
    t.unique(['snapshot_id', 'order']);
  });
  await knex.raw(`
    ALTER TABLE community_snapshot_media
      ADD CONSTRAINT community_snapshot_media_type_valid CHECK (type IN ('image', 'gif', 'video')),
      ADD CONSTRAINT community_snapshot_media_copied CHECK (copied_at IS NULL OR (blob_name IS NOT NULL AND blob_url IS NOT NULL AND checksum IS NOT NULL));
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('community_snapshot_media');
  await knex.schema.dropTable('community_snapshots');
}
