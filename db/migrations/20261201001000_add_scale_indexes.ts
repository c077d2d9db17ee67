import type { Knex } from 'knex';

// Issue 14 item 1 (the bench's scale part): two request paths read a whole large table once it held
// a year of data.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    -- The feed's search and creator filters match a substring of a creator's name. Any substring of
    -- the first or the last name is one of "first last" (concat_ws skips a missing part), so one
    -- trigram index on the full name serves both; concat_ws is only STABLE, hence the wrapper.
    CREATE FUNCTION user_full_name(text, text) RETURNS text
      LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT concat_ws(' ', $1, $2) $$;
    CREATE INDEX users_full_name_trgm ON users USING gin (user_full_name(first_name, last_name) gin_trgm_ops);

    -- The operators' "redispatched" figure sums redispatches over the kept rows: only the few rows the
    -- reconciler ever touched, read from this index alone instead of every finished row.
    CREATE INDEX job_outbox_redispatched ON job_outbox (id) INCLUDE (redispatches) WHERE redispatches > 0;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP INDEX job_outbox_redispatched;
    DROP INDEX users_full_name_trgm;
    DROP FUNCTION user_full_name(text, text);
  `);
}
