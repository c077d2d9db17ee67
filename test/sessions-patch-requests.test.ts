import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { createTestApp, httpSessionCookie, registerUser, type TestUser } from './helpers/app.js';
import { Client, expectEnvelope, expectUnchanged, sessionRow, type Body } from './helpers/session-state.js';

describe('PATCH /api/sessions/:id: requests refused before any change', () => {
  const t = createTestApp();
  let owner: Client;
  let stranger: Client;

  before(async () => {
    owner = new Client(t, await registerUser(t));
    stranger = new Client(t, await registerUser(t));
  });

  /** A PATCH with a raw body and Content-Type, as the owner. */
  const raw = (id: number, contentType: string, body: string | Buffer) =>
    t.http().patch(`/api/sessions/${id}`).set('Cookie', owner.user.cookie).set('Content-Type', contentType).send(body);

  describe('authentication', () => {
    it('401 without a session cookie, before looking at the body or the id', async () => {
      const s = await owner.create();
      await expectUnchanged(t.knex, s.id, async () => {
        expectEnvelope(await t.http().patch(`/api/sessions/${s.id}`).set('Content-Type', 'application/json').send('{"title":"x"}'), 401, 'UNAUTHORIZED');
        expectEnvelope(await t.http().patch(`/api/sessions/${s.id}`).set('Content-Type', 'application/json').send('{"title": '), 401, 'UNAUTHORIZED');
        expectEnvelope(await t.http().patch('/api/sessions/2000000000').set('Content-Type', 'application/json').send('{}'), 401, 'UNAUTHORIZED');
        expectEnvelope(await t.http().delete(`/api/sessions/${s.id}`), 401, 'UNAUTHORIZED');
      });
    });

    it('401 for a cookie that is not a valid session', async () => {
      const s = await owner.create();
      const value = owner.user.cookie.slice('connect.sid='.length);
      for (const cookie of ['connect.sid=', 'connect.sid=forged.value', `connect.sid=${value.slice(0, -3)}abc`, `other=${value}`]) {
        await expectUnchanged(t.knex, s.id, async () => {
          const res = await t.http().patch(`/api/sessions/${s.id}`).set('Cookie', cookie).set('Content-Type', 'application/json').send('{"title":"x"}');
          expectEnvelope(res, 401, 'UNAUTHORIZED');
        });
      }
    });

    it('logout revokes the cookie for the sessions API', async () => {
      const s = await owner.create();
      const login = await t.http().post('/api/auth/login').send({ email: owner.user.email, password: owner.user.password }).expect(200);
      const second: TestUser = { ...owner.user, cookie: httpSessionCookie(login.headers['set-cookie']) };
      const c2 = new Client(t, second);
      expect(await c2.patchOk(s.id, { title: 'Before logout' })).to.include({ title: 'Before logout' });
      await t.http().get('/api/sessions').set('Cookie', second.cookie).expect(200);

      await t.http().post('/api/auth/logout').set('Cookie', second.cookie).expect(200);

      await expectUnchanged(t.knex, s.id, async () => {
        expectEnvelope(await c2.patch(s.id, { title: 'After logout' }), 401, 'UNAUTHORIZED');
        expectEnvelope(await t.http().get('/api/sessions').set('Cookie', second.cookie), 401, 'UNAUTHORIZED');
        expectEnvelope(await t.http().post('/api/sessions').set('Cookie', second.cookie).send({ title: 'x', subreddits: 'pics' }), 401, 'UNAUTHORIZED');
        expectEnvelope(await t.http().delete(`/api/sessions/${s.id}`).set('Cookie', second.cookie), 401, 'UNAUTHORIZED');
        // Reading needs a login too, so the revoked cookie cannot read the session either.
        expectEnvelope(await t.http().get(`/api/sessions/${s.id}`).set('Cookie', second.cookie), 401, 'UNAUTHORIZED');
      });
      // The owner's other login is untouched.
      expect(await owner.patchOk(s.id, { title: 'Other login' })).to.include({ title: 'Other login' });
    });

    it('GET /api/logout (the reference alias) revokes too', async () => {
      const login = await t.http().post('/api/login').send({ email: owner.user.email, password: owner.user.password }).expect(302);
      const cookie = httpSessionCookie(login.headers['set-cookie']);
      await t.http().get('/api/sessions').set('Cookie', cookie).expect(200);
      const out = await t.http().get('/api/logout').set('Cookie', cookie);
      expect(out.status).to.be.below(400);
      expectEnvelope(await t.http().get('/api/sessions').set('Cookie', cookie), 401, 'UNAUTHORIZED');
    });
  });

  describe('someone else’s session', () => {
    /** The body with the requested id masked, so two ids' answers can be compared. */
    const masked = (body: Body, id: number): string => JSON.stringify(body).split(String(id)).join('<id>');
    const missingId = 2_000_000_000;

    it('PATCH answers 404 exactly like a session that does not exist, for any body or If-Match', async () => {
      const s = await owner.create({ isPublic: true, shareToCommunity: true });
      await t.knex('sessions').where({ id: s.id }).update({ is_imported: true });
      const etag = (await owner.get(s.id)).headers.etag as string;
      const bodies: [unknown, Record<string, string>][] = [
        [{ title: 'Mine now' }, {}],
        [{ aiPrompt: 'locked field on an imported session' }, {}],
        [{ shareToCommunity: false }, {}],
        [{ title: 'Stale' }, { 'If-Match': '"s1-v999"' }],
        [{ title: 'Current' }, { 'If-Match': etag }],
      ];
      for (const [body, headers] of bodies) {
        await expectUnchanged(t.knex, s.id, async () => {
          const theirs = await stranger.patch(s.id, body, headers);
          const missing = await stranger.patch(missingId, body, headers);
          expectEnvelope(theirs, 404, 'NOT_FOUND');
          expect(masked(theirs.body as Body, s.id), JSON.stringify(body)).to.equal(masked(missing.body as Body, missingId));
        });
      }
      // Bad input is refused the same way whether the session exists or not.
      const theirs = await stranger.patch(s.id, { title: '' });
      const missing = await stranger.patch(missingId, { title: '' });
      expectEnvelope(theirs, 400, 'VALIDATION_ERROR');
      expect(theirs.body).to.deep.equal(missing.body);
    });

    it('DELETE and GET (private) answer 404 exactly like a missing session; a public one is readable, not writable', async () => {
      const s = await owner.create();
      await expectUnchanged(t.knex, s.id, async () => {
        const del = await t.http().delete(`/api/sessions/${s.id}`).set('Cookie', stranger.user.cookie);
        const delMissing = await t.http().delete(`/api/sessions/${missingId}`).set('Cookie', stranger.user.cookie);
        expectEnvelope(del, 404, 'NOT_FOUND');
        expect(masked(del.body as Body, s.id)).to.equal(masked(delMissing.body as Body, missingId));
        const get = await stranger.get(s.id);
        expectEnvelope(get, 404, 'NOT_FOUND');
        expect(masked(get.body as Body, s.id)).to.equal(masked((await stranger.get(missingId)).body as Body, missingId));
      });
      await owner.patchOk(s.id, { isPublic: true });
      expect((await stranger.get(s.id)).status).to.equal(200);
      await expectUnchanged(t.knex, s.id, async () => {
        expectEnvelope(await stranger.patch(s.id, { title: 'Mine now' }), 404, 'NOT_FOUND');
        expectEnvelope(await t.http().delete(`/api/sessions/${s.id}`).set('Cookie', stranger.user.cookie), 404, 'NOT_FOUND');
      });
    });

    it('a malformed id is a 400 naming it', async () => {
      for (const id of ['abc', '0', '-1', '1.5', '99999999999', '1e3']) {
        const res = await owner.patch(id, { title: 'x' });
        expect(expectEnvelope(res, 400, 'VALIDATION_ERROR').message, id).to.match(/^id must be a positive integer/);
      }
    });
  });

  describe('bodies that are not a JSON object', () => {
    it(`413 for a body over the limit (config.bodyLimitBytes), 400 at exactly the limit`, async () => {
      const limit = t.config.bodyLimitBytes;
      expect(limit).to.equal(100 * 1024);
      const s = await owner.create();
      const sized = (bytes: number): string => {
        const frame = '{"aiPrompt":""}';
        const body = `{"aiPrompt":"${'x'.repeat(bytes - frame.length)}"}`;
        expect(Buffer.byteLength(body)).to.equal(bytes);
        return body;
      };
      await expectUnchanged(t.knex, s.id, async () => {
        const over = await raw(s.id, 'application/json', sized(limit + 1));
        expect(expectEnvelope(over, 413, 'PAYLOAD_TOO_LARGE').message).to.include(String(limit));
        // At the limit the body is read, and then refused for what it says.
        const at = await raw(s.id, 'application/json', sized(limit));
        expect(expectEnvelope(at, 400, 'VALIDATION_ERROR').message).to.match(/^aiPrompt must NOT have more than 2000 characters/);
      });
    });

    it('413 for an oversized body sent without a Content-Length (chunked)', async () => {
      const s = await owner.create();
      const server = http.createServer(t.app.callback());
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = server.address() as AddressInfo;
        const result = await expectUnchanged(t.knex, s.id, () =>
          new Promise<{ status: number; body: string }>((resolve, reject) => {
            let answered = false;
            const req = http.request({ port, host: '127.0.0.1', method: 'PATCH', path: `/api/sessions/${s.id}`, headers: { Cookie: owner.user.cookie, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } }, (res) => {
              answered = true;
              let body = '';
              res.setEncoding('utf8');
              res.on('data', (chunk: string) => (body += chunk));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            });
            // The server answers and closes before the whole body is written: a write error after the answer is expected.
            req.on('error', (e) => {
              if (!answered) reject(e);
            });
            req.write(`{"aiPrompt":"`);
            for (let i = 0; i < 30; i++) req.write('x'.repeat(8 * 1024));
            req.end('"}');
          }),
        );
        expect(result.status).to.equal(413);
        expect(JSON.parse(result.body)).to.include({ code: 'PAYLOAD_TOO_LARGE' });
      } finally {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    });

    it('415 for a body that is not JSON', async () => {
      const s = await owner.create();
      await expectUnchanged(t.knex, s.id, async () => {
        for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'text/json-ish']) {
          const res = await raw(s.id, type, type === 'application/x-www-form-urlencoded' ? 'title=x' : '{"title":"x"}');
          expectEnvelope(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
        }
      });
      // JSON media types with parameters or a +json suffix are JSON.
      expect((await raw(s.id, 'application/json; charset=utf-8', '{"title":"Charset"}')).status).to.equal(200);
      expect((await raw(s.id, 'application/merge-patch+json', '{"title":"Merge patch"}')).status).to.equal(200);
    });

    it('400 for malformed JSON', async () => {
      const s = await owner.create();
      await expectUnchanged(t.knex, s.id, async () => {
        for (const text of ['{"title": ', "{'title':'x'}", '{"title":"x",}', '{title:"x"}', '{"title":"x"} trailing', '{"intervalMin":NaN}']) {
          const res = await raw(s.id, 'application/json', text);
          const body = expectEnvelope(res, 400, 'INVALID_JSON');
          expect(body.message, text).to.match(/^Malformed JSON in request body/);
        }
      });
    });

    it('400 for JSON that is not an object: an array, null, a string, a number, a boolean', async () => {
      const s = await owner.create();
      await expectUnchanged(t.knex, s.id, async () => {
        for (const text of ['[]', '[{"title":"x"}]', 'null', '"title"', '42', 'true']) {
          const body = expectEnvelope(await raw(s.id, 'application/json', text), 400, 'VALIDATION_ERROR');
          expect(body.message, text).to.equal('Request body must be a JSON object');
        }
      });
      expect((await sessionRow(t.knex, s.id)).title).to.equal('My session');
    });
  });
});
