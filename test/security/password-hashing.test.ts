import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../config.js';
import { dummyPasswordHash, hashPassword } from '../../db/password.js';
import { createTestApp, registerUser, type TestApp } from '../helpers/app.js';
import { ownTestDatabase } from '../helpers/database.js';

/**
 * Issue 22 §5: passwords are hashed with scrypt at OWASP's current parameters (N = 2^17, r = 8,
 * p = 1), stored beside each hash; a login that succeeds with an older, weaker hash re-hashes it in
 * the same request. (The suite itself runs at a low cost, test/helpers/app.ts: this file uses the
 * production one.)
 */

const PRODUCTION = { NODE_ENV: 'production', SESSION_SECRET: 'a-production-secret-of-32-characters!' };
const CURRENT = 'scrypt$131072$8$1$';

const storedHash = async (t: TestApp, email: string): Promise<string> =>
  ((await t.knex('users').where({ email }).first('password_hash')) as { password_hash: string }).password_hash;

describe('security: password hashes at N = 2^17, upgraded on login', function () {
  this.timeout(120_000);
  // A database of its own: the failed logins here must neither meet nor leave other suites' counts
  // of failures from this address.
  const db = ownTestDatabase();
  let t: TestApp;

  before(() => {
    // The production default (the first test shows it is 17), over the suite's low test cost.
    t = createTestApp({ knex: db.knex, env: { PASSWORD_SCRYPT_COST: '17' } });
  });

  it('production hashes at cost 17 by default and refuses less, naming the variable', () => {
    expect(loadConfig(PRODUCTION).passwordScryptCost).to.equal(17);
    expect(() => loadConfig({ ...PRODUCTION, PASSWORD_SCRYPT_COST: '16' }))
      .to.throw(ConfigError, /^PASSWORD_SCRYPT_COST: must be at least 17 in production/)
      .with.property('variable', 'PASSWORD_SCRYPT_COST');
    expect(loadConfig({ ...PRODUCTION, PASSWORD_SCRYPT_COST: '18' }).passwordScryptCost).to.equal(18);
    expect(loadConfig({ NODE_ENV: 'test', PASSWORD_SCRYPT_COST: '10' }).passwordScryptCost).to.equal(10);
  });

  it('registration stores N, r and p beside the hash; an unknown email is checked against a hash of the same parameters', async () => {
    const user = await registerUser(t);
    expect(await storedHash(t, user.email)).to.match(new RegExp(`^${CURRENT.replace(/\$/g, '\\$')}[A-Za-z0-9+/=]{24}\\$[A-Za-z0-9+/=]{88}$`));
    expect(await dummyPasswordHash(17)).to.satisfy((h: string) => h.startsWith(CURRENT));
    const unknown = await t.http().post('/api/auth/login').send({ email: 'nobody@example.test', password: user.password });
    expect(unknown.status).to.equal(401);
  });

  it('a login with an older hash (N = 2^14, the former setting) succeeds and re-hashes it at the current parameters', async () => {
    const user = await registerUser(t);
    const old = await hashPassword(user.password, 14);
    expect(old.startsWith('scrypt$16384$8$1$')).to.equal(true);
    await t.knex('users').where({ id: user.user.id }).update({ password_hash: old });

    // A wrong password proves nothing: the old hash stays.
    expect((await t.http().post('/api/auth/login').send({ email: user.email, password: 'wrong password' })).status).to.equal(401);
    expect(await storedHash(t, user.email)).to.equal(old);

    const login = await t.http().post('/api/auth/login').send({ email: user.email, password: user.password });
    expect(login.status, login.text).to.equal(200);
    const upgraded = await storedHash(t, user.email);
    expect(upgraded.startsWith(CURRENT), upgraded).to.equal(true);

    // The new hash verifies, and a login with the current parameters changes nothing.
    expect((await t.http().post('/api/auth/login').send({ email: user.email, password: user.password })).status).to.equal(200);
    expect(await storedHash(t, user.email)).to.equal(upgraded);
  });
});
