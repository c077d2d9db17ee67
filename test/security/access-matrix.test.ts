import { expect } from 'chai';
import { ACTORS, answersAs, expectationOf, fillPath, headersFor, useAccessSuite } from '../helpers/access-table.js';

/**
 * The authorisation matrix, generated from the app's route table: every route × {anonymous, a user,
 * the owner, an admin}, each answering as `test/helpers/access-table.ts` expects, and no answer
 * carrying the owner's private data to anyone else. A route without an expectation fails the test.
 */
describe('security: the access matrix of every route', function () {
  this.timeout(120_000);
  const suite = useAccessSuite();

  it('every route has an expected access, and each kind of caller gets it', async () => {
    const { client, routes, f } = suite;
    const missing = routes.filter((r) => !expectationOf(r)).map((r) => `${r.method} ${r.path}`);
    expect(missing, 'routes without an entry in the expected-access table').to.deep.equal([]);

    const mismatches: string[] = [];
    const leaks: string[] = [];
    let cases = 0;
    for (const route of routes) {
      const e = expectationOf(route)!;
      // The owner last, so a delete by anyone else is tried while the target still exists.
      for (const actor of [...ACTORS.filter((a) => a !== 'owner'), 'owner' as const]) {
        const status = e.expect[actor];
        if (status === undefined) continue;
        cases += 1;
        const path = fillPath(route.path, e.params?.(f) ?? {});
        const headers = await headersFor(client, f, actor, route.method, e.ownLogin === true);
        const res = await client.send(route.method, path, { headers, ...(e.body ? { json: e.body(f, actor) } : {}) });
        if (res.status >= 500) throw new Error(`${route.method} ${path} as ${actor}: ${res.status} ${res.text.slice(0, 300)}`);
        if (!answersAs(res.status, status)) mismatches.push(`${route.method} ${path} as ${actor}: ${res.status} (expected ${status}) ${res.text.slice(0, 160)}`);
        // bull-board answers its own errors in its own shape; every other error is ours.
        if (res.status >= 400 && !route.path.startsWith('/admin/queues')) {
          expect(res.body, `${route.method} ${path} as ${actor}: the error envelope`).to.include.keys('error', 'message', 'code');
        }
        // Admins see creators' emails (the moderation page shows them); nobody else does.
        const text = `${res.text}${JSON.stringify(res.headers)}`;
        if (actor !== 'owner' && (text.includes(f.secret) || (actor !== 'admin' && text.includes(f.users.owner.email)))) leaks.push(`${route.method} ${path} as ${actor}: ${res.text.slice(0, 300)}`);
      }
    }
    expect(mismatches, mismatches.join('\n')).to.deep.equal([]);
    expect(leaks, leaks.join('\n')).to.deep.equal([]);
    console.log(`      access matrix: ${routes.length} routes, ${cases} cases`);
  });

  it('refused writes wrote nothing: only the owner’s PATCH and DELETE landed', async () => {
    const { stack, client, f } = suite;
    const rows = await stack.knex('sessions').whereIn('id', [f.priv, f.pub, f.doomed]).orderBy('id');
    expect(rows.map((r: { id: number }) => r.id)).to.deep.equal([f.priv, f.pub]);
    const priv = rows.find((r: { id: number }) => r.id === f.priv) as { version: number; is_favorite: boolean };
    expect(priv).to.include({ version: 2, is_favorite: true });
    // Each caller's list holds their own sessions only.
    for (const actor of ['user', 'admin'] as const) {
      const list = await client.send('GET', '/api/sessions', { headers: { cookie: f.users[actor].cookie } });
      expect(list.status).to.equal(200);
      expect((list.body as { userId: string }[]).every((s) => s.userId === f.users[actor].user.id)).to.equal(true);
    }
  });
});
