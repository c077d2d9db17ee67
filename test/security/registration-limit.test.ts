import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { createTestApp } from '../helpers/app.js';

/** Registration costs a password hash (real memory and CPU): `REGISTER_RATE_LIMIT` per address per hour. */
describe('security: the registration limit', () => {
  it('refuses a third registration from one address with 429, headers and the envelope; another address registers', async () => {
    const t = createTestApp({ env: { TRUST_PROXY: '1', REGISTER_RATE_LIMIT: '2' } });
    const address = `192.0.2.${Math.floor(Math.random() * 250) + 1}`;
    const register = (from: string) =>
      t.http().post('/api/auth/register').set('X-Forwarded-For', from).send({ email: `reg-${randomBytes(5).toString('hex')}@example.test`, password: 'correct horse battery staple' });
    for (let i = 0; i < 2; i++) {
      const res = await register(address);
      expect(res.status).to.equal(201);
      expect(res.headers['x-ratelimit-remaining']).to.equal(String(1 - i));
    }
    const refused = await register(address);
    expect(refused.status).to.equal(429);
    expect(Object.keys(refused.body).sort()).to.deep.equal(['code', 'error', 'message', 'retryAfter']);
    expect(refused.body).to.include({ error: 'Too Many Requests', code: 'RATE_LIMITED' });
    expect(refused.headers['retry-after']).to.equal(String(refused.body.retryAfter));
    expect(refused.headers['x-ratelimit-limit']).to.equal('2');
    expect(new Date(Date.parse(refused.headers['x-ratelimit-reset'] as string)).toISOString()).to.equal(refused.headers['x-ratelimit-reset']);
    expect((await register('192.0.2.254')).status).to.equal(201);
  });

  it('defaults to 10 an hour; 0 turns it off', () => {
    expect(createTestApp({ env: { REGISTER_RATE_LIMIT: '' } }).config.registerRateLimit).to.equal(10);
    expect(createTestApp({ env: { REGISTER_RATE_LIMIT: '0' } }).config.registerRateLimit).to.equal(0);
  });
});
