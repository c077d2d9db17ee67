import type { Knex } from 'knex';

// Postgres stays the system of record after dispatch (docs/architecture.md §3): a row records when its job
// finished, so a reconciler can find jobs that Redis acknowledged and then lost.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE job_outbox
      ADD COLUMN finished_at timestamptz NULL,
      ADD COLUMN final_state text NULL,
      ADD COLUMN redispatches integer NOT NULL DEFAULT 0,
      ADD CONSTRAINT job_outbox_final_state_valid CHECK (final_state IN ('completed', 'failed')),
      -- A final state without its time (or the reverse) would hide a row from both the
      -- reconciler (finished_at IS NULL) and retention (finished_at IS NOT NULL) in turn.
      ADD CONSTRAINT job_outbox_finished_consistent CHECK ((finished_at IS NULL) = (final_state IS NULL));

    -- The reconciler's scan: dispatched, not finished, oldest dispatch first.
    CREATE INDEX job_outbox_unfinished ON job_outbox (dispatched_at, id)
      WHERE finished_at IS NULL AND dispatched_at IS NOT NULL;
    -- Retention deletes finished rows older than its horizon.
    CREATE INDEX job_outbox_finished ON job_outbox (finished_at) WHERE finished_at IS NOT NULL;

    -- Rows dispatched before this record existed never get one: their jobs either ran already
    -- (nothing wrote finished_at) or are still in Redis under outbox-<id>. Left unfinished, the
    -- reconciler's first pass would look at every one of them at once, and any whose BullMQ job
    -- was already removed (removeOnComplete) reads as "Redis no longer has it" and would run
    -- again. Marking them finished keeps an upgrade from replaying history.
    UPDATE job_outbox SET finished_at = dispatched_at, final_state = 'completed'
      WHERE dispatched_at IS NOT NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP INDEX job_outbox_finished;
    DROP INDEX job_outbox_unfinished;
    ALTER TABLE job_outbox
      DROP CONSTRAINT job_outbox_finished_consistent,
      DROP CONSTRAINT job_outbox_final_state_valid,
      DROP COLUMN redispatches,
      DROP COLUMN final_state,
      DROP COLUMN finished_at;
  `);
}
