import { expect } from 'chai';
import { createTestApp, registerUser } from '../helpers/app.js';

/**
 * The API-wide limit counts the route a request reached: a path spelled otherwise (`/API/SESSIONS`,
 * a trailing or doubled slash) is no way around it, because such a spelling reaches no route at all.
 */
describe('security: the API rate limit keys on the canonical route', () => {
  it('other spellings of a limited path are no way past the limit', async () => {
    const t = createTestApp({ env: { API_RATE_LIMIT: '3', API_RATE_LIMIT_WINDOW_SECONDS: '900' } });
    const u = await registerUser(t);
    for (let i = 0; i < 3; i++) expect((await t.http().get('/api/sessions').set('Cookie', u.cookie)).status).to.equal(200);
    expect((await t.http().get('/api/sessions').set('Cookie', u.cookie)).status, 'the limit is spent').to.equal(429);
    for (const spelling of ['/API/SESSIONS', '/Api/Sessions', '/api/Sessions', '/api/sessions/', '/api//sessions', '/api/%73essions', '/API/COMMUNITY']) {
      const res = await t.http().get(spelling).set('Cookie', u.cookie);
      expect(res.status, `${spelling}: ${res.text.slice(0, 120)}`).to.equal(404);
      expect(res.body).to.include({ code: 'NOT_FOUND' });
    }
  });
});
