import http from 'node:http';
import { expect } from 'chai';
import { chromium, type Browser } from 'playwright-core';
import { pino } from 'pino';
import { promote, registerUser, type TestUser } from './helpers/app.js';
import { findChromium } from './helpers/chromium.js';
import { createSession, outboxFor } from './helpers/flows.js';
import { startJobStack, type JobStack } from './helpers/job-stack.js';
import { waitFor } from './helpers/wait.js';
import { createApp } from '../server/app.js';

describe('dashboard in a real browser (headless Chromium)', function () {
  this.timeout(120_000);
  let stack: JobStack;
  let server: http.Server;
  let baseUrl: string;
  let browser: Browser;
  let admin: TestUser;

  before(async function () {
    // Where no browser is installed yet, findChromium installs one (apt-get), which takes minutes.
    this.timeout(10 * 60_000);
    const executablePath = await findChromium();
    stack = await startJobStack();
    await stack.startWorker();
    const app = createApp({ config: stack.config, knex: stack.knex, logger: pino({ level: 'silent' }), afterCommit: (ids) => stack.fast.submit(ids), queues: stack.producer, blobs: stack.blobs });
    server = http.createServer(app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    admin = await registerUser(stack.t);
    await promote(stack.t, admin);
    browser = await chromium.launch({
      executablePath,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await stack?.close();
  });

  it('an anonymous browser is sent to the login page and the dashboard API refuses it', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${baseUrl}/admin/queues`);
      expect(new URL(page.url()).pathname).to.equal('/admin/login');
      expect(await page.locator('h1').textContent()).to.match(/operators/i);
      const api = await page.request.get(`${baseUrl}/admin/queues/api/queues`);
      expect(api.status()).to.equal(401);
    } finally {
      await page.close();
    }
  });

  it('an admin logs in, sees the three queues and a failed job with its reason, and retries it', async () => {
    // A thumbnail job that fails for good: its only image answers 404 (until we fix it).
    const user = await registerUser(stack.t);
    const image = await stack.fixture.image('/media/dash-src.jpg', { width: 640, height: 480, format: 'jpeg' });
    let fixed = false;
    stack.fixture.route('/media/dash.jpg', (_req, res) => (fixed ? void res.writeHead(200, { 'content-type': 'image/jpeg' }).end(image) : void res.writeHead(404).end()));
    stack.fixture.setListing(['dash'], [{ id: 'dash1', kind: 'image', path: '/media/dash.jpg' }]);
    const created = await createSession(stack.t, user, { title: 'Dash', subreddits: 'dash' });
    const row = (await outboxFor(stack.knex, created.id)).find((r) => r.queue === 'thumbnails')!;
    await waitFor('the thumbnail job to fail', async () => (await stack.job('thumbnails', row.id))?.state === 'failed');

    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await page.goto(`${baseUrl}/admin/queues`);
      await page.fill('#email', admin.email);
      await page.fill('#password', admin.password);
      await page.click('button[type=submit]');
      await page.waitForURL(/\/admin\/queues/);
      for (const name of ['media', 'thumbnails', 'snapshots']) {
        await page.getByText(name, { exact: true }).first().waitFor({ timeout: 15_000 });
      }
      await page.goto(`${baseUrl}/admin/queues/queue/thumbnails?status=failed`);
      await page.getByText(`outbox-${row.id}`).first().waitFor({ timeout: 15_000 });
      await page.getByText(/answered 404/).first().waitFor({ timeout: 15_000 });

      fixed = true;
      page.on('dialog', (d) => void d.accept());
      await page.getByRole('button', { name: /retry/i }).first().click();
      const confirm = page.getByRole('button', { name: /^(confirm|retry)$/i });
      if (await confirm.count()) await confirm.last().click().catch(() => undefined);
      await waitFor('the retried job to complete', async () => (await stack.job('thumbnails', row.id))?.state === 'completed');
      expect((await stack.knex('sessions').where({ id: created.id }).first()).thumbnail).to.match(/\.webp$/);
    } finally {
      await context.close();
    }
  });

  it('refuses a cross-site state change even with an admin cookie', async () => {
    const login = await fetch(`${baseUrl}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: admin.email, password: admin.password }) });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const cross = await fetch(`${baseUrl}/admin/queues/api/queues/thumbnails/retry/failed`, { method: 'PUT', headers: { cookie, origin: 'https://evil.example' } });
    expect(cross.status).to.equal(403);
    const same = await fetch(`${baseUrl}/admin/queues/api/queues/thumbnails/retry/failed`, { method: 'PUT', headers: { cookie, origin: baseUrl } });
    expect(same.status).to.be.lessThan(400);
  });
});
