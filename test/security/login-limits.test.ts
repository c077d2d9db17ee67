import { expect } from 'chai';
import { createTestApp, registerUser, type TestApp } from '../helpers/app.js';
import { waitFor } from '../helpers/wait.js';

let addresses = Math.floor(Math.random() * 200);
/** An address of its own for each use, as our one trusted proxy appends it. */
const freshAddress = (): string => `198.18.${Math.floor(addresses / 250) % 250}.${(addresses++ % 250) + 1}`;

/**
 * Logins are counted BEFORE the password is checked (atomically, in PostgreSQL), per address and per
 * account (rate-limiter-flexible's login-protection pattern): parallel guesses cannot all get past
 * the check, and guessing one account's password from many addresses stops too.
 */
describe('security: login limits', () => {
  const app = (env: Record<string, string> = {}): TestApp => createTestApp({ env: { TRUST_PROXY: '1', ...env } });
  const login = (t: TestApp, address: string, email: string, password: string) =>
    t.http().post('/api/auth/login').set('X-Forwarded-For', address).send({ email, password });

  it('12 parallel wrong guesses from one address check at most 5 passwords', async () => {
    const t = app();
    const u = await registerUser(t);
    const address = freshAddress();
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => login(t, address, u.email, `wrong guess ${i}`)));
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 401).length, `statuses ${statuses.join(' ')}`).to.be.at.most(5);
    expect(statuses.filter((s) => s !== 401 && s !== 429), 'every other answer is 429').to.deep.equal([]);
    // The address is spent: the right password is refused too, with the reference's headers.
    const refused = await login(t, address, u.email, u.password);
    expect(refused.status).to.equal(429);
    expect(refused.body).to.include({ code: 'RATE_LIMITED' });
    expect(refused.headers['x-ratelimit-limit']).to.equal('5');
    expect(refused.headers['x-ratelimit-remaining']).to.equal('0');
  });

  it('consecutive failures on one account from many addresses lock its logins for the window; then the password works', async () => {
    const t = app({ LOGIN_ACCOUNT_MAX_FAILURES: '4', LOGIN_WINDOW_SECONDS: '2' });
    const u = await registerUser(t);
    for (let i = 0; i < 4; i++) expect((await login(t, freshAddress(), u.email, 'wrong')).status).to.equal(401);
    // A fifth address, the right password: the account is locked, whoever asks.
    const locked = await login(t, freshAddress(), u.email, u.password);
    expect(locked.status).to.equal(429);
    expect(locked.body.message).to.match(/this account/);
    expect(locked.body.retryAfter).to.be.within(1, 2);
    // Another account is not affected.
    const other = await registerUser(t);
    expect((await login(t, freshAddress(), other.email, other.password)).status).to.equal(200);
    await waitFor('the account lock to end', async () => (await login(t, freshAddress(), u.email, u.password)).status === 200, { timeoutMs: 10_000, intervalMs: 250 });
  });

  it('a successful login clears the account’s count of consecutive failures', async () => {
    const t = app({ LOGIN_ACCOUNT_MAX_FAILURES: '3' });
    const u = await registerUser(t);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 2; i++) expect((await login(t, freshAddress(), u.email, 'wrong')).status).to.equal(401);
      expect((await login(t, freshAddress(), u.email, u.password)).status, `round ${round}`).to.equal(200);
    }
  });

  it('failures from one address add up over the day, beyond the 15-minute windows', async () => {
    const t = app({ LOGIN_MAX_FAILURES: '3', LOGIN_WINDOW_SECONDS: '1', LOGIN_DAILY_MAX_FAILURES: '4' });
    const u = await registerUser(t);
    const address = freshAddress();
    for (let i = 0; i < 3; i++) expect((await login(t, address, u.email, 'wrong')).status).to.equal(401);
    // The short window passes; the day's count does not.
    await waitFor('the short window to pass', async () => (await login(t, address, u.email, 'wrong')).status === 401, { timeoutMs: 10_000, intervalMs: 250 });
    const refused = await login(t, address, u.email, u.password);
    expect(refused.status).to.equal(429);
    expect(refused.body.message).to.match(/today/);
  });

  it('a malformed login is a 400 and counts nothing', async () => {
    const t = app({ LOGIN_MAX_FAILURES: '2' });
    const u = await registerUser(t);
    const address = freshAddress();
    for (let i = 0; i < 5; i++) await t.http().post('/api/auth/login').set('X-Forwarded-For', address).send({ email: u.email }).expect(400);
    expect((await login(t, address, u.email, u.password)).status).to.equal(200);
  });
});
