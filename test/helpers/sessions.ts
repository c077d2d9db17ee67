import { expect } from 'chai';
import type { Knex } from '../../db/knex.js';
import type { TestApp, TestUser } from './app.js';

/** A session created through the API (the reference client's way), returning its body. */
export async function newSession(t: TestApp, user: TestUser, body: Record<string, unknown> = {}): Promise<Record<string, unknown> & { id: number }> {
  const res = await t.http().post('/api/sessions').set('Cookie', user.cookie).send({ title: 'My session', subreddits: 'pics, earthporn', ...body });
  expect(res.status, JSON.stringify(res.body)).to.equal(201);
  return res.body as Record<string, unknown> & { id: number };
}

/** The session row and its outbox rows, to prove a rejected request changed nothing. */
export async function snapshotState(knex: Knex, sessionId: number): Promise<string> {
  const [session, outbox, snapshots] = await Promise.all([
    knex('sessions').where({ id: sessionId }).first(),
    knex('job_outbox').whereRaw(`(payload->>'sessionId')::int = ?`, [sessionId]).orderBy('id'),
    knex('community_snapshots').where({ session_id: sessionId }),
  ]);
  return JSON.stringify({ session, outbox, snapshots });
}

/** The outbox rows written for a session after `afterId`. */
export async function outboxSince(knex: Knex, sessionId: number, afterId: number): Promise<{ id: number; queue: string; job_name: string; payload: Record<string, number> }[]> {
  return knex('job_outbox').whereRaw(`(payload->>'sessionId')::int = ?`, [sessionId]).andWhere('id', '>', afterId).orderBy('id');
}

export async function maxOutboxId(knex: Knex): Promise<number> {
  const row = await knex('job_outbox').max<{ max: number | null }[]>({ max: 'id' });
  return Number(row[0]?.max ?? 0);
}
