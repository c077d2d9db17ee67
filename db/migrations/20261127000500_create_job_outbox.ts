import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // Jobs a transaction needs, written in that transaction; dispatched to BullMQ after COMMIT
  // (docs/architecture.md §2). The BullMQ job id is `outbox-<id>`, so a second dispatch is the same job.
  await knex.schema.createTable('job_outbox', (t) => {
    t.bigIncrements('id').primary();
    t.text('queue').notNullable();
    t.text('job_name').notNullable();
    t.jsonb('payload').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('dispatched_at', { useTz: true });
    t.integer('attempts').notNullable().defaultTo(0);
    t.text('last_error');
    t.timestamp('next_attempt_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`
    ALTER TABLE job_outbox ADD CONSTRAINT job_outbox_queue_valid CHECK (queue IN ('media', 'thumbnails', 'snapshots'));
    CREATE INDEX job_outbox_undispatched ON job_outbox (next_attempt_at, id) WHERE dispatched_at IS NULL;

    -- Wakes the relay (LISTEN job_outbox) once per inserting statement, delivered at COMMIT.
    CREATE FUNCTION job_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_notify('job_outbox', '');
      RETURN NULL;
    END $$;
    CREATE TRIGGER job_outbox_notify AFTER INSERT ON job_outbox
      FOR EACH STATEMENT EXECUTE FUNCTION job_outbox_notify();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER IF EXISTS job_outbox_notify ON job_outbox; DROP FUNCTION IF EXISTS job_outbox_notify();');
  await knex.schema.dropTable('job_outbox');
}
