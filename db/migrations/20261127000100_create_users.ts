import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (t) => {
    t.text('id').primary();
    t.text('email').notNullable();
    t.text('first_name');
    t.text('last_name');
    t.text('profile_image_url');
    t.text('password_hash').notNullable();
    t.text('role').notNullable().defaultTo('user');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`
    ALTER TABLE users
      ADD CONSTRAINT users_id_format CHECK (id ~ '^user_[A-Za-z0-9_-]+$'),
      ADD CONSTRAINT users_email_normalised CHECK (email = lower(email) AND email LIKE '%_@_%'),
      ADD CONSTRAINT users_role_valid CHECK (role IN ('user', 'admin', 'super_admin'));
    CREATE UNIQUE INDEX users_email_unique ON users (email);
  `);

  // koa-session's external store. The key is the SHA-256 of the cookie's session id, so a leaked
  // table does not hand out working cookies.
  await knex.schema.createTable('http_sessions', (t) => {
    t.text('id_hash').primary();
    t.text('user_id').references('users.id').onDelete('CASCADE');
    t.jsonb('data').notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['expires_at']);
    t.index(['user_id']);
  });

  // Failed-login counters per client address: kept in Postgres so every web process shares them
  // and auth never depends on Redis.
  await knex.schema.createTable('auth_rate_limits', (t) => {
    t.text('key').primary();
    t.integer('failures').notNullable().defaultTo(0);
    t.timestamp('window_started_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('auth_rate_limits');
  await knex.schema.dropTable('http_sessions');
  await knex.schema.dropTable('users');
}
