import { expect } from 'chai';
import type { Knex } from '../../db/knex.js';
import type { TestApp, TestUser } from './app.js';
import type { FixturePost, FixtureServer } from './fixture-server.js';

/** Serves `count` images for a subreddit listing and returns the posts. */
export async function serveImages(fixture: FixtureServer, subreddit: string, count: number, opts: { width?: number; height?: number } = {}): Promise<FixturePost[]> {
  const posts: FixturePost[] = [];
  for (let i = 0; i < count; i++) {
    const id = `${subreddit.slice(0, 6)}${i}${Math.random().toString(36).slice(2, 7)}`;
    const path = `/media/${id}.jpg`;
    await fixture.image(path, { width: opts.width ?? 800, height: opts.height ?? 600, format: 'jpeg' });
    posts.push({ id, kind: 'image', path });
  }
  fixture.setListing([subreddit], posts);
  return posts;
}

/** PATCHes through the API as the reference client does; expects `status` and returns the body. */
export async function patch(t: TestApp, user: TestUser, id: number, body: Record<string, unknown>, status = 200): Promise<Record<string, unknown>> {
  const res = await t.http().patch(`/api/sessions/${id}`).set('Cookie', user.cookie).send(body);
  expect(res.status, JSON.stringify(res.body)).to.equal(status);
  return res.body as Record<string, unknown>;
}

export async function createSession(t: TestApp, user: TestUser, body: Record<string, unknown>): Promise<{ id: number } & Record<string, unknown>> {
  const res = await t.http().post('/api/sessions').set('Cookie', user.cookie).send(body);
  expect(res.status, JSON.stringify(res.body)).to.equal(201);
  return res.body as { id: number } & Record<string, unknown>;
}

/** The outbox rows written for one session (by payload), oldest first. */
export async function outboxFor(knex: Knex, sessionId: number): Promise<{ id: number; queue: string; job_name: string; payload: Record<string, number>; dispatched_at: Date | null; attempts: number }[]> {
  return knex('job_outbox')
    .whereRaw(`(payload->>'sessionId')::int = ?`, [sessionId])
    .orderBy('id');
}

/** True once every outbox row of the session has been dispatched. */
export async function allDispatched(knex: Knex, sessionId: number): Promise<boolean> {
  const rows = await outboxFor(knex, sessionId);
  return rows.length > 0 && rows.every((r) => r.dispatched_at !== null);
}
