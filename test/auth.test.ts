import { expect } from 'chai';
import { readHttpSession } from '../db/http-sessions.js';
import { findUserById } from '../db/users.js';
import { HttpSessionIds } from '../server/http-session-cookie.js';
import { createTestApp, httpSessionCookie, registerUser } from './helpers/app.js';

describe('auth', () => {
  const t = createTestApp();

  it('registers, logs in with the connect.sid cookie alone, and logout revokes it', async () => {
    const u = await registerUser(t, { firstName: 'Ada' });
    const me = await t.http().get('/api/auth/user').set('Cookie', u.cookie).expect(200);
    expect(me.body).to.include({ email: u.email, firstName: 'Ada', role: 'user' });
    expect(me.body).to.not.have.property('passwordHash');

    const login = await t.http().post('/api/auth/login').send({ email: u.email, password: u.password }).expect(200);
    const cookie = httpSessionCookie(login.headers['set-cookie']);
    // The name is the contract the reference clients rely on, whatever the constant says.
    expect(cookie).to.match(/^connect\.sid=[^;]+$/);
    expect(cookie).to.not.equal(u.cookie);
    const setCookie = String(login.headers['set-cookie']);
    expect(setCookie).to.match(/httponly/i).and.to.match(/samesite=lax/i).and.not.match(/connect\.sid\.sig/);

    await t.http().post('/api/auth/logout').set('Cookie', cookie).expect(200);
    await t.http().get('/api/auth/user').set('Cookie', cookie).expect(401);
    // The other session (from registration) is untouched.
    await t.http().get('/api/auth/user').set('Cookie', u.cookie).expect(200);
  });

  it('a request holds its user without the password hash: both ways of loading it read the account columns alone', async () => {
    const u = await registerUser(t);
    const key = new HttpSessionIds(t.config.sessionSecrets).storeKey(decodeURIComponent(u.cookie.replace(/^connect\.sid=/, '')));
    expect(key, 'the cookie is a signed login session').to.be.a('string');
    const stored = await readHttpSession(t.knex, key!);
    expect(stored?.user).to.include({ id: u.user.id, email: u.email, role: 'user' });
    expect(stored?.user).to.not.have.property('password_hash');
    const byId = await findUserById(t.knex, u.user.id);
    expect(byId).to.include({ id: u.user.id, email: u.email });
    expect(byId).to.not.have.property('password_hash');
  });

  it('answers a wrong password and an unknown email alike', async () => {
    const u = await registerUser(t);
    const wrong = await t.http().post('/api/auth/login').set('X-Forwarded-For', '203.0.113.9').send({ email: u.email, password: 'nope-nope-nope' }).expect(401);
    const unknown = await t.http().post('/api/auth/login').send({ email: 'nobody@example.test', password: 'nope-nope-nope' }).expect(401);
    expect(wrong.body).to.deep.equal(unknown.body);
    expect(wrong.body).to.include({ error: 'Unauthorized', code: 'UNAUTHORIZED' });
  });

  it('refuses a login after 5 failures from one address with 429 and rate-limit headers', async () => {
    const proxied = createTestApp({ env: { TRUST_PROXY: 'true' } });
    const u = await registerUser(proxied);
    const ip = `198.51.100.${Math.floor(Math.random() * 250) + 1}`;
    for (let i = 0; i < 5; i++) {
      const res = await proxied.http().post(i % 2 ? '/api/login' : '/api/auth/login').set('X-Forwarded-For', ip).send({ email: u.email, password: 'wrong-password' }).expect(401);
      expect(res.headers['x-ratelimit-remaining']).to.equal(String(4 - i));
    }
    const limited = await proxied.http().post('/api/auth/login').set('X-Forwarded-For', ip).send({ email: u.email, password: u.password }).expect(429);
    expect(limited.body).to.include({ error: 'Too Many Requests', code: 'RATE_LIMITED' });
    expect(limited.body.retryAfter).to.be.a('number').greaterThan(0);
    expect(limited.headers['x-ratelimit-limit']).to.equal('5');
    // An ISO 8601 time within the window, as the reference gives it.
    const reset = Date.parse(limited.headers['x-ratelimit-reset'] as string);
    expect(limited.headers['x-ratelimit-reset']).to.equal(new Date(reset).toISOString());
    expect(reset).to.be.greaterThan(Date.now()).and.at.most(Date.now() + 15 * 60_000);
    // Another address is not affected.
    await proxied.http().post('/api/auth/login').set('X-Forwarded-For', '192.0.2.77').send({ email: u.email, password: u.password }).expect(200);
  });

  it('rejects a duplicate email with 409 and a short password with 400', async () => {
    const u = await registerUser(t);
    const dup = await t.http().post('/api/auth/register').send({ email: u.email.toUpperCase(), password: 'another-password' }).expect(409);
    expect(dup.body.code).to.equal('EMAIL_TAKEN');
    const short = await t.http().post('/api/auth/register').send({ email: 'x@example.test', password: 'short' }).expect(400);
    expect(short.body.details.fields[0]).to.include({ pointer: '/password' });
  });

  it('401s for tampered, forged and unsigned cookies', async () => {
    const u = await registerUser(t);
    const value = u.cookie.slice('connect.sid='.length);
    const [id, sig] = value.split('.');
    for (const bad of [`${id}.${sig!.slice(0, -2)}xx`, `${id!.slice(0, -2)}AA.${sig}`, id!, 'forged.value', '']) {
      await t.http().get('/api/auth/user').set('Cookie', `connect.sid=${bad}`).expect(401);
    }
  });
});
