import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // The blob of the newest thumbnail generated for the session, kept after the user clears it or
  // picks a custom one: the next generation deletes exactly this blob instead of listing the folder.
  await knex.schema.alterTable('sessions', (t) => {
    t.text('thumbnail_blob');
  });
  await knex.raw(`
    UPDATE sessions
       SET thumbnail_blob = substring(thumbnail FROM '(thumbnails/sessions/[0-9]+/[0-9]+\\.webp)$')
     WHERE thumbnail_source = 'auto' AND thumbnail IS NOT NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('sessions', (t) => {
    t.dropColumn('thumbnail_blob');
  });
}
