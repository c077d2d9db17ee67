import type { Knex } from 'knex';

// docs/architecture.md §6: thumbnails are rendered from the smallest listing preview that covers 640×360. A sync
// keeps what the listing says about each item's preview: the source image's size and the same image
// at smaller widths (`{source: {width, height} | null, resolutions: [{url, width, height}]}`).
// Null for rows synced before this column existed and for media added by hand: the thumbnail job
// then renders from the source, as it always did.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE session_media ADD COLUMN previews jsonb NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE session_media DROP COLUMN previews`);
}
