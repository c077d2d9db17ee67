import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('sessions', (t) => {
    t.increments('id').primary();
    t.text('user_id').notNullable().references('users.id').onDelete('CASCADE');
    t.text('title').notNullable();
    t.specificType('subreddits', 'text[]').notNullable().defaultTo('{}');
    t.integer('category_id').notNullable().references('categories.id');
    t.text('category_source').notNullable().defaultTo('default');
    t.integer('interval_min').notNullable().defaultTo(3);
    t.integer('interval_max').notNullable().defaultTo(10);
    t.text('transition').notNullable().defaultTo('fade');
    t.text('thumbnail');
    t.text('thumbnail_source').notNullable().defaultTo('auto');
    // Bumped whenever the thumbnail is (re)decided; a generation job writes only if it still matches.
    t.integer('thumbnail_generation').notNullable().defaultTo(0);
    t.text('ai_prompt');
    t.text('caption_theme').notNullable();
    t.boolean('is_public').notNullable().defaultTo(false);
    t.boolean('share_to_community').notNullable().defaultTo(false);
    t.boolean('is_favorite').notNullable().defaultTo(false);
    t.boolean('is_manual_mode').notNullable().defaultTo(false);
    t.boolean('is_imported').notNullable().defaultTo(false);
    t.text('import_source');
    // The subreddits the current session_media rows were synced from (null: never synced).
    t.specificType('media_subreddits', 'text[]');
    t.integer('version').notNullable().defaultTo(1);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`
    ALTER TABLE sessions
      ADD CONSTRAINT sessions_title_length CHECK (char_length(title) BETWEEN 1 AND 200),
      ADD CONSTRAINT sessions_subreddits_count CHECK (cardinality(subreddits) <= 25),
      ADD CONSTRAINT sessions_category_source_valid CHECK (category_source IN ('default', 'manual')),
      ADD CONSTRAINT sessions_interval_min_range CHECK (interval_min BETWEEN 1 AND 60),
      ADD CONSTRAINT sessions_interval_max_range CHECK (interval_max BETWEEN 1 AND 60),
      ADD CONSTRAINT sessions_interval_order CHECK (interval_min <= interval_max),
      ADD CONSTRAINT sessions_transition_valid CHECK (transition IN ('fade', 'slide', 'zoom', 'flip', 'none')),
      ADD CONSTRAINT sessions_thumbnail_source_valid CHECK (thumbnail_source IN ('auto', 'custom')),
      ADD CONSTRAINT sessions_ai_prompt_length CHECK (ai_prompt IS NULL OR char_length(ai_prompt) <= 2000),
      ADD CONSTRAINT sessions_version_positive CHECK (version >= 1),
      ADD CONSTRAINT sessions_thumbnail_generation_nonnegative CHECK (thumbnail_generation >= 0);
    CREATE INDEX sessions_user_newest ON sessions (user_id, created_at DESC, id DESC);
    CREATE INDEX sessions_category ON sessions (category_id);
  `);

  await knex.schema.createTable('session_media', (t) => {
    t.increments('id').primary();
    t.integer('session_id').notNullable().references('sessions.id').onDelete('CASCADE');
    t.text('media_url').notNullable();
    t.text('thumbnail');
    t.text('caption');
    t.text('type').notNullable();
    t.text('reddit_post_id');
    t.text('reddit_post_url');
    t.text('subreddit');
    t.integer('order').notNullable();
    t.unique(['session_id', 'order']);
  });
  await knex.raw(`
    ALTER TABLE session_media
      ADD CONSTRAINT session_media_type_valid CHECK (type IN ('image', 'gif', 'video')),
      ADD CONSTRAINT session_media_order_nonnegative CHECK ("order" >= 0);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('session_media');
  await knex.schema.dropTable('sessions');
}
