import type { Knex } from 'knex';

// The login limit moves to rate-limiter-flexible's PostgreSQL store, which counts an attempt in one
// atomic upsert before its password is checked (the old table was read, then written after the
// check, so parallel guesses all passed). The table has the store's own shape: rows are
// (key, points, expire in epoch milliseconds), and it is written positionally, so the column order
// matters. Open windows of the old table are not carried over: at worst a client gets a fresh window.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('rate_limits', (t) => {
    t.string('key', 255).primary();
    t.integer('points').notNullable();
    t.bigInteger('expire');
    t.index(['expire'], 'rate_limits_expire_idx');
  });
  await knex.schema.dropTable('auth_rate_limits');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.createTable('auth_rate_limits', (t) => {
    t.text('key').primary();
    t.integer('failures').notNullable().defaultTo(0);
    t.timestamp('window_started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.dropTable('rate_limits');
}
