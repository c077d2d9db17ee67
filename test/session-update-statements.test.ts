import { expect } from 'chai';
import { lockSession, MAX_PREPARED_SESSION_UPDATES, updateSession, type SessionChanges } from '../db/sessions.js';
import { createTestApp, registerUser } from './helpers/app.js';

/**
 * A PATCH's UPDATE is prepared once per set of changed columns, and a prepared statement stays on
 * every connection that ran it. Clients choose which fields they send, so the sets must be bounded:
 * past MAX_PREPARED_SESSION_UPDATES, a connection keeps no more of them.
 */
describe('session UPDATEs: the prepared statements a connection keeps are bounded', () => {
  it('100 different sets of changed columns on one connection: every write applies, at most the bound are kept', async () => {
    const t = createTestApp();
    const owner = await registerUser(t);
    const created = await t.http().post('/api/sessions').set('Cookie', owner.cookie).send({ title: 'shapes', subreddits: 'pics' });
    expect(created.status, created.text).to.equal(201);
    const id = (created.body as { id: number }).id;
    const choices: SessionChanges = { title: 'x', ai_prompt: 'p', is_favorite: true, is_manual_mode: true, is_public: true, transition: 'zoom', caption_theme: 'beta' };
    const names = Object.keys(choices) as (keyof SessionChanges)[];
    const sets = Array.from({ length: 100 }, (_, i) => names.filter((_, bit) => ((i + 1) >> bit) & 1));

    const { version, kept } = await t.knex.transaction(async (trx) => {
      let row = (await lockSession(trx, id))!.session;
      for (const [i, set] of sets.entries()) {
        row = await updateSession(trx, row, Object.fromEntries(set.map((c) => [c, c === 'title' ? `title ${i}` : choices[c]])));
      }
      const [{ n }] = (await trx.raw(`SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement LIKE 'UPDATE sessions SET%'`)).rows as [{ n: number }];
      return { version: row.version, kept: n };
    });
    expect(version).to.equal(101);
    const stored = await t.knex('sessions').where({ id }).first();
    expect(stored).to.include({ title: 'title 98', version: 101 });
    expect(kept).to.be.at.most(MAX_PREPARED_SESSION_UPDATES);
  });
});
