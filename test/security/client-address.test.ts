import { expect } from 'chai';
import { createTestApp, registerUser } from '../helpers/app.js';

/**
 * `TRUST_PROXY` counts proxies. Behind one, the client address is the one that proxy appended to
 * `X-Forwarded-For` (the last entry), never an entry the client wrote itself, so rotating the
 * leftmost entry does not reset the login limit or the anonymous API limit.
 */
describe('security: the client address behind a proxy', () => {
  const proxied = (env: Record<string, string> = {}) => createTestApp({ env: { TRUST_PROXY: '1', ...env } });
  /** What a client that forges `forged` sends, after our proxy appended the address it saw. */
  const via = (forged: string, real: string): string => `${forged}, ${real}`;

  it('rotating a forged X-Forwarded-For entry does not reset the login limit', async () => {
    const t = proxied();
    const u = await registerUser(t);
    const real = `198.51.100.${Math.floor(Math.random() * 250) + 1}`;
    for (let i = 0; i < 5; i++) {
      await t.http().post('/api/auth/login').set('X-Forwarded-For', via(`10.0.0.${i}`, real)).send({ email: u.email, password: 'wrong password' }).expect(401);
    }
    const refused = await t.http().post('/api/auth/login').set('X-Forwarded-For', via('10.9.9.9', real)).send({ email: u.email, password: u.password });
    expect(refused.status).to.equal(429);
  });

  it('rotating a forged X-Forwarded-For entry does not reset the anonymous API limit', async () => {
    const t = proxied({ API_RATE_LIMIT: '3' });
    const real = `203.0.113.${Math.floor(Math.random() * 250) + 1}`;
    for (let i = 0; i < 3; i++) expect((await t.http().get('/api/community').set('X-Forwarded-For', via(`10.1.0.${i}`, real))).status).to.equal(401);
    expect((await t.http().get('/api/community').set('X-Forwarded-For', via('10.1.9.9', real))).status).to.equal(429);
  });

  it('reads TRUST_PROXY as a number of proxies; true is one, false none; anything else is refused', () => {
    expect(proxied({ TRUST_PROXY: 'true' }).config.trustProxy).to.equal(1);
    expect(proxied({ TRUST_PROXY: '2' }).config.trustProxy).to.equal(2);
    expect(proxied({ TRUST_PROXY: 'false' }).config.trustProxy).to.equal(0);
    expect(createTestApp().config.trustProxy).to.equal(0);
    expect(() => proxied({ TRUST_PROXY: 'sometimes' })).to.throw(/TRUST_PROXY/);
  });
});
