import type { Knex } from './knex.js';
import type { OutboxRow } from './types.js';

/** A job as the outbox stores it; `workers/queues` builds these with typed payloads. */
export interface OutboxJob {
  queue: string;
  name: string;
  payload: Record<string, unknown>;
}

/** Writes the jobs inside the caller's transaction; returns the new row ids. */
export async function insertOutboxJobs(trx: Knex.Transaction, jobs: OutboxJob[]): Promise<number[]> {
  if (jobs.length === 0) return [];
  const rows = await trx('job_outbox')
    .insert(jobs.map((j) => ({ queue: j.queue, job_name: j.name, payload: j.payload })))
    .returning('id');
  return rows.map((r: { id: number }) => r.id);
}

export async function getOutboxRows(knex: Knex, ids: number[]): Promise<OutboxRow[]> {
  if (ids.length === 0) return [];
  return knex<OutboxRow>('job_outbox').whereIn('id', ids).orderBy('id');
}
