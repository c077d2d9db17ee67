import { expect } from 'chai';
import { createTestApp, registerUser } from '../helpers/app.js';
import { createSession } from '../helpers/flows.js';

/**
 * A state-changing request another site's page sent is refused (403), body or no body: its `Origin`
 * is foreign, or the browser says `Sec-Fetch-Site: cross-site`. Requests without either (curl, a
 * server) still work. `GET /api/logout` from another site is refused too.
 */
describe('security: cross-site requests', () => {
  const t = createTestApp();

  it('refuses body-less and JSON writes with a foreign Origin or Sec-Fetch-Site: cross-site, and changes nothing', async () => {
    const owner = await registerUser(t);
    const s = await createSession(t, owner, { title: 'Mine', subreddits: 'pics', thumbnail: 'https://cdn.example.test/t.png' });
    const writes: [string, string][] = [
      ['POST', `/api/sessions/${s.id}/share`],
      ['DELETE', `/api/sessions/${s.id}/share`],
      ['PATCH', `/api/sessions/${s.id}`],
      ['DELETE', `/api/sessions/${s.id}`],
      ['POST', '/api/auth/logout'],
      ['POST', '/api/community/sessions/1/like'],
      ['POST', '/api/community/sessions/1/save'],
    ];
    for (const [method, path] of writes) {
      for (const [header, value] of [
        ['Origin', 'http://evil.example'],
        ['Origin', 'null'],
        ['Sec-Fetch-Site', 'cross-site'],
        ['Sec-Fetch-Site', 'same-site'],
      ] as const) {
        let req = t.http()[method.toLowerCase() as 'post' | 'patch' | 'delete'](path).set('Cookie', owner.cookie).set(header, value);
        if (method === 'PATCH') req = req.send({ title: 'Hijacked' });
        const res = await req;
        expect(res.status, `${method} ${path} with ${header}: ${value}`).to.equal(403);
        expect(res.body).to.include({ code: 'CROSS_SITE_REQUEST' });
      }
    }
    const after = await t.http().get(`/api/sessions/${s.id}`).set('Cookie', owner.cookie).expect(200);
    expect(after.body.session).to.include({ title: 'Mine', isPublic: false });
    // This site's own page, and curl (no Origin), still write.
    await t.http().post(`/api/sessions/${s.id}/share`).set('Cookie', owner.cookie).set('Origin', t.config.publicBaseUrl).set('Sec-Fetch-Site', 'same-origin').expect(200);
    await t.http().delete(`/api/sessions/${s.id}/share`).set('Cookie', owner.cookie).expect(204);
  });

  it('GET /api/logout from another site is refused and the user stays logged in; from this site it logs out', async () => {
    const u = await registerUser(t);
    const refused = await t.http().get('/api/logout').set('Cookie', u.cookie).set('Sec-Fetch-Site', 'cross-site');
    expect(refused.status).to.equal(403);
    await t.http().get('/api/logout').set('Cookie', u.cookie).set('Origin', 'http://evil.example').expect(403);
    await t.http().get('/api/auth/user').set('Cookie', u.cookie).expect(200);
    await t.http().get('/api/logout').set('Cookie', u.cookie).set('Sec-Fetch-Site', 'same-origin').expect(200);
    await t.http().get('/api/auth/user').set('Cookie', u.cookie).expect(401);
  });
});
