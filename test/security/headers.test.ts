import { expect } from 'chai';
import type supertest from 'supertest';
import { createTestApp, promote, registerUser, type TestUser } from '../helpers/app.js';
import { startJobStack, type JobStack } from '../helpers/job-stack.js';
import { fullApp, type RawClient } from '../helpers/access-table.js';

/**
 * Every response says `nosniff`; every page refuses framing (ours and bull-board's); our pages run
 * no inline script; HSTS goes out in production when the public URL is https.
 */
describe('security: response headers', function () {
  this.timeout(60_000);
  let stack: JobStack;
  let client: RawClient;
  let admin: TestUser;

  before(async () => {
    stack = await startJobStack();
    ({ client } = await fullApp(stack));
    admin = await registerUser(stack.t);
    await promote(stack.t, admin);
  });
  after(async () => {
    await client?.close();
    await stack?.close();
  });

  const framingRefused = (headers: Record<string, unknown>): boolean =>
    headers['x-frame-options'] === 'DENY' && /frame-ancestors 'none'/.test(String(headers['content-security-policy']));

  it('nosniff and no framing on every answer: JSON, errors, 404s, pages, bull-board', async () => {
    const cookie = { cookie: admin.cookie };
    const answers = [
      await client.send('GET', '/healthz'),
      await client.send('GET', '/api/sessions'),
      await client.send('GET', '/api/sessions', { headers: cookie }),
      await client.send('GET', '/nowhere'),
      await client.send('GET', '/API//x'),
      await client.send('POST', '/api/sessions', { headers: { ...cookie, 'content-type': 'text/plain' } }),
      await client.send('GET', '/admin/login'),
      await client.send('GET', '/admin/community', { headers: { ...cookie, accept: 'text/html' } }),
      await client.send('GET', '/admin/queues', { headers: { ...cookie, accept: 'text/html' } }),
      await client.send('GET', '/admin/queues/queue/media', { headers: { ...cookie, accept: 'text/html' } }),
      await client.send('GET', '/admin/queues/api/queues', { headers: cookie }),
    ];
    for (const res of answers) {
      expect(res.headers['x-content-type-options'], res.text.slice(0, 80)).to.equal('nosniff');
      expect(framingRefused(res.headers), `${res.status} ${res.text.slice(0, 80)}`).to.equal(true);
      expect(res.headers).to.not.have.property('strict-transport-security');
    }
    // The HTML pages among them are really pages.
    expect(answers.slice(6, 10).map((r) => r.headers['content-type'])).to.satisfy((types: string[]) => types.every((t) => t.startsWith('text/html')));
  });

  it('our pages allow no inline script, and their scripts are files of this origin', async () => {
    for (const [path, headers] of [
      ['/admin/login', {}],
      ['/admin/community', { cookie: admin.cookie, accept: 'text/html' }],
    ] as const) {
      const res = await client.send('GET', path, { headers });
      expect(res.status).to.equal(200);
      const csp = String(res.headers['content-security-policy']);
      const scriptSrc = /script-src ([^;]*)/.exec(csp)?.[1] ?? /default-src ([^;]*)/.exec(csp)?.[1];
      expect(scriptSrc, csp).to.equal("'self'");
      expect(csp).to.not.include('unsafe-inline\' ; script').and.not.match(/script-src[^;]*unsafe/);
      // Every <script> has a src, on this origin, that is served as JavaScript.
      const scripts = [...res.text.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
      expect(scripts.length, path).to.be.greaterThan(0);
      for (const [, attributes, inline] of scripts) {
        expect(inline!.trim(), `${path}: inline script`).to.equal('');
        const src = /src="([^"]+)"/.exec(attributes!)?.[1];
        expect(src, `${path}: a script src`).to.match(/^\/admin\//);
        const js = await client.send('GET', src!, { headers });
        expect(js.status).to.equal(200);
        expect(js.headers['content-type']).to.match(/^application\/javascript/);
      }
    }
  });

  it('HSTS in production behind https, not otherwise', async () => {
    const production = { NODE_ENV: 'production', SESSION_SECRET: 'x'.repeat(40) };
    const https = createTestApp({ env: { ...production, PUBLIC_BASE_URL: 'https://showrunner.example' } });
    const hsts = (await https.http().get('/healthz')).headers['strict-transport-security'] as string;
    expect(hsts).to.match(/^max-age=\d{7,}/);
    const plain = createTestApp({ env: { ...production, PUBLIC_BASE_URL: 'http://showrunner.example' } });
    expect((await plain.http().get('/healthz')).headers).to.not.have.property('strict-transport-security');
    const dev = createTestApp({ env: { PUBLIC_BASE_URL: 'https://showrunner.example' } });
    const res: supertest.Response = await dev.http().get('/healthz');
    expect(res.headers).to.not.have.property('strict-transport-security');
  });
});
