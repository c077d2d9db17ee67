import type { Knex } from 'knex';

// user_full_name (see add_scale_indexes) wrapped concat_ws, which is only STABLE, in an IMMUTABLE
// function so that users_full_name_trgm could index it. PostgreSQL does not inline a SQL function
// whose body is more volatile than it is declared, so every row the trigram index returns was
// rechecked through a call of the function: a creator search matching 11,111 users of 20,000
// rechecked 12,114 rows in 28 ms. The same result from immutable operators (concat_ws skips a NULL
// part, and gives '' for two) is inlined, in the index's expression as in the queries: 14 ms.
// The results are the same for every input, so the index built on the old body stays valid.
const BODY_INLINED = `SELECT CASE WHEN $1 IS NULL THEN coalesce($2, '') WHEN $2 IS NULL THEN $1 ELSE $1 || ' ' || $2 END`;
const BODY_BEFORE = `SELECT concat_ws(' ', $1, $2)`;

const define = (body: string): string =>
  `CREATE OR REPLACE FUNCTION user_full_name(text, text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ ${body} $$`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(define(BODY_INLINED));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(define(BODY_BEFORE));
}
