import { expect } from 'chai';
import type supertest from 'supertest';
import type { Knex } from '../../db/knex.js';
import type { SessionRow } from '../../db/types.js';
import type { TestApp, TestUser } from './app.js';

/** A JSON response body as the tests read it. */
export type Body = Record<string, unknown>;

export interface OutboxRowView {
  id: number;
  queue: string;
  job_name: string;
  payload: Record<string, number>;
}

export interface CategoryView {
  id: number;
  slug: string;
  name: string;
  isDefault: boolean;
}

/**
 * Everything a request could have written for one session: its row, media, snapshot rows (with
 * their media), and every outbox row that names the session or one of its snapshots, plus the
 * outbox's highest id (a rejected request must not write a job for anything else either).
 */
export async function sessionState(knex: Knex, sessionId: number): Promise<Record<string, unknown>> {
  const [session, media, snapshots, snapshotMedia, outbox, outboxMax] = await Promise.all([
    knex('sessions').where({ id: sessionId }).first(),
    knex('session_media').where({ session_id: sessionId }).orderBy('id'),
    knex('community_snapshots').where({ session_id: sessionId }).orderBy('id'),
    knex('community_snapshot_media as m')
      .join('community_snapshots as s', 's.id', 'm.snapshot_id')
      .where('s.session_id', sessionId)
      .orderBy('m.id')
      .select('m.*'),
    knex('job_outbox')
      .whereRaw(`payload->>'sessionId' = ?`, [String(sessionId)])
      .orWhereRaw(`payload->>'snapshotId' IN (SELECT payload->>'snapshotId' FROM job_outbox WHERE payload->>'sessionId' = ?)`, [String(sessionId)])
      .orderBy('id'),
    maxOutboxId(knex),
  ]);
  return { session, media, snapshots, snapshotMedia, outbox, outboxMax };
}

/** Runs `action` and proves the session's rows and the outbox are exactly as before. */
export async function expectUnchanged<T>(knex: Knex, sessionId: number, action: () => Promise<T>): Promise<T> {
  const before = await sessionState(knex, sessionId);
  const result = await action();
  expect(await sessionState(knex, sessionId), `rows of session ${sessionId} changed`).to.deep.equal(before);
  return result;
}

export async function maxOutboxId(knex: Knex): Promise<number> {
  const row = await knex('job_outbox').max<{ max: number | null }[]>({ max: 'id' });
  return Number(row[0]?.max ?? 0);
}

/** Every outbox row written after `mark` (tests in one file run one at a time against their own database). */
export async function outboxAfter(knex: Knex, mark: number): Promise<OutboxRowView[]> {
  return knex('job_outbox').where('id', '>', mark).orderBy('id').select('id', 'queue', 'job_name', 'payload');
}

/** The outbox rows after `mark` as `[queue, job_name, payload]`, the shape assertions compare. */
export async function jobsAfter(knex: Knex, mark: number): Promise<[string, string, Record<string, number>][]> {
  return (await outboxAfter(knex, mark)).map((r) => [r.queue, r.job_name, r.payload]);
}

export async function sessionRow(knex: Knex, id: number): Promise<SessionRow> {
  const row = await knex<SessionRow>('sessions').where({ id }).first();
  if (!row) throw new Error(`session ${id} is gone`);
  return row;
}

/** Requests as the reference client makes them: the `connect.sid` cookie and a JSON body, nothing else. */
export class Client {
  constructor(
    readonly t: TestApp,
    readonly user: TestUser,
  ) {}

  /** PATCH with a raw JSON text (or a value to stringify); never a 5xx for anything a client sends. */
  async patch(id: number | string, body: unknown, headers: Record<string, string> = {}): Promise<supertest.Response> {
    const res = await this.t
      .http()
      .patch(`/api/sessions/${id}`)
      .set('Cookie', this.user.cookie)
      .set('Content-Type', 'application/json')
      .set(headers)
      .send(typeof body === 'string' ? body : JSON.stringify(body));
    expect(res.status, `PATCH ${JSON.stringify(body).slice(0, 200)} → ${res.status} ${res.text.slice(0, 300)}`).to.be.below(500);
    return res;
  }

  /** PATCH expecting 200; returns the body. */
  async patchOk(id: number, body: unknown, headers: Record<string, string> = {}): Promise<Body> {
    const res = await this.patch(id, body, headers);
    expect(res.status, res.text).to.equal(200);
    return res.body as Body;
  }

  /** POST /api/sessions expecting 201; returns the body. */
  async create(body: Record<string, unknown> = {}): Promise<Body & { id: number }> {
    const res = await this.t
      .http()
      .post('/api/sessions')
      .set('Cookie', this.user.cookie)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ title: 'My session', subreddits: 'pics, earthporn', ...body }));
    expect(res.status, res.text).to.equal(201);
    return res.body as Body & { id: number };
  }

  async get(id: number): Promise<supertest.Response> {
    return this.t.http().get(`/api/sessions/${id}`).set('Cookie', this.user.cookie);
  }
}

/** Asserts the error envelope of docs/api.md §4: exactly `{error, message, code, details?}`, all strings but details. */
export function expectEnvelope(res: supertest.Response, status: number, code: string): Body {
  expect(res.status, res.text).to.equal(status);
  expect(res.headers['content-type']).to.match(/^application\/json/);
  const body = res.body as Body;
  const keys = Object.keys(body).filter((k) => k !== 'details');
  expect(keys.sort(), `envelope keys of ${res.text}`).to.deep.equal(['code', 'error', 'message']);
  expect(body.error).to.be.a('string').and.not.equal('');
  expect(body.message).to.be.a('string').and.not.equal('');
  expect(body.code).to.equal(code);
  if ('details' in body) expect(body.details).to.be.an('object');
  return body;
}

/** The failing fields' JSON pointers in a validation error, sorted. */
export function failingPointers(body: Body): string[] {
  const details = body.details as { fields?: { pointer: string }[] } | undefined;
  return (details?.fields ?? []).map((f) => f.pointer).sort();
}

export async function categories(t: TestApp): Promise<{ all: CategoryView[]; byDefault: CategoryView; other: CategoryView }> {
  const res = await t.http().get('/api/categories').expect(200);
  const all = res.body as CategoryView[];
  const byDefault = all.find((c) => c.isDefault);
  const other = all.find((c) => !c.isDefault);
  if (!byDefault || !other) throw new Error('the seed should give a default and another category');
  return { all, byDefault, other };
}
