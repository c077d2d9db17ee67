import http from 'node:http';
import { expect } from 'chai';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { pino } from 'pino';
import { createJobClient } from '../workers/index.js';
import { createTestApp, promote, registerUser, testConfig, type TestApp, type TestUser } from './helpers/app.js';
import { findChromium } from './helpers/chromium.js';
import { testKnex } from './helpers/database.js';
import { startFixtureServer, type FixtureServer } from './helpers/fixture-server.js';
import { createSession } from './helpers/flows.js';
import { waitFor } from './helpers/wait.js';
import { deleteQueueKeys } from '../scripts/lib/queue-keys.js';

describe('moderation page in a real browser (headless Chromium)', function () {
  this.timeout(120_000);
  const config = testConfig();
  const jobs = createJobClient(config, testKnex(), pino({ level: 'silent' }), 'showrunner-test');
  let t: TestApp;
  let server: http.Server;
  let baseUrl: string;
  let fixture: FixtureServer;
  let browser: Browser;
  let admin: TestUser;
  let user: TestUser;
  let creator: TestUser;

  before(async () => {
    const executablePath = await findChromium();
    t = createTestApp({ knex: testKnex(), deps: { queues: jobs.producer } });
    server = http.createServer(t.app.callback());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    fixture = await startFixtureServer();
    admin = await registerUser(t);
    await promote(t, admin);
    user = await registerUser(t);
    creator = await registerUser(t, { firstName: 'Creator' });
    browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  });
  after(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await fixture?.close();
    await jobs.close();
    await deleteQueueKeys(config.redisUrl, config.queuePrefix);
  });

  /** A shared session whose snapshot is ready with a thumbnail, as if its copy job had run. */
  async function readyItem(title: string): Promise<{ sessionId: number; snapshotId: number }> {
    const session = await createSession(t, creator, { title, subreddits: 'pics', shareToCommunity: true });
    const snapshot = (await t.knex('community_snapshots').where({ session_id: session.id }).first('id')) as { id: number };
    await fixture.image(`/thumbs/${snapshot.id}.jpg`, { width: 480, height: 270, format: 'jpeg' });
    await t
      .knex('community_snapshots')
      .where({ id: snapshot.id })
      .update({ status: 'ready', ready_at: new Date(), media_count: 3, copied_count: 3, thumbnail_url: fixture.url(`/thumbs/${snapshot.id}.jpg`) });
    return { sessionId: session.id, snapshotId: snapshot.id };
  }

  /** A browser logged in as the admin through the login page, starting from the moderation page. */
  async function adminContext(): Promise<BrowserContext> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${baseUrl}/admin/community`);
    expect(new URL(page.url()).pathname).to.equal('/admin/login');
    await page.fill('#email', admin.email);
    await page.fill('#password', admin.password);
    await page.click('button[type=submit]');
    await page.waitForURL(`${baseUrl}/admin/community`);
    await page.close();
    return context;
  }

  const feedIds = async (who: TestUser): Promise<number[]> =>
    ((await t.http().get(`/api/community?creatorId=${creator.user.id}&pageSize=100`).set('Cookie', who.cookie).expect(200)).body as { items: { id: number }[] }).items.map((i) => i.id);

  it('anonymous: the login page (which links both operator pages); a non-admin: 403', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${baseUrl}/admin/community?status=ready`);
      expect(new URL(page.url()).pathname).to.equal('/admin/login');
      expect(new URL(page.url()).searchParams.get('next')).to.equal('/admin/community?status=ready');
      expect(await page.locator('a[href="/admin/queues"]').count()).to.be.above(0);
      expect(await page.locator('a[href="/admin/community"]').count()).to.be.above(0);
      if (process.env.MODERATION_SCREENSHOT) await page.screenshot({ path: process.env.MODERATION_SCREENSHOT.replace(/\.png$/, '-login.png') });
    } finally {
      await page.close();
    }
    const context = await browser.newContext();
    try {
      const [name, value] = user.cookie.split('=') as [string, string];
      await context.addCookies([{ name, value, url: baseUrl }]);
      const page = await context.newPage();
      const res = await page.goto(`${baseUrl}/admin/community`);
      expect(res?.status()).to.equal(403);
      expect(new URL(page.url()).pathname).to.equal('/admin/community');
    } finally {
      await context.close();
    }
  });

  it('an admin hides an item from the page and a non-admin feed no longer has it; unhide brings it back', async () => {
    const { snapshotId } = await readyItem('Browser hide');
    expect(await feedIds(user)).to.include(snapshotId);
    const context = await adminContext();
    try {
      const page = await context.newPage();
      await page.goto(`${baseUrl}/admin/community`);
      const card = page.locator(`article[data-snapshot-id="${snapshotId}"]`);
      await expect(await card.locator('img.thumb').getAttribute('src')).to.equal(fixture.url(`/thumbs/${snapshotId}.jpg`));
      expect(await card.textContent()).to.contain('3/3 media copied').and.contain('ready');
      // The reason is required: the browser refuses the form without one and nothing changes.
      await card.getByRole('button', { name: 'Hide' }).click();
      expect(await card.locator('input[name=reason]').evaluate((i) => (i as unknown as { validity: { valueMissing: boolean } }).validity.valueMissing)).to.equal(true);
      expect((await t.knex('community_snapshots').where({ id: snapshotId }).first()).is_hidden).to.equal(false);

      await card.locator('input[name=reason]').fill('Spam, reported twice');
      await card.getByRole('button', { name: 'Hide' }).click();
      await card.locator('.badge.hidden').waitFor({ timeout: 15_000 });
      expect(await feedIds(user)).to.not.include(snapshotId);
      expect(await feedIds(admin)).to.include(snapshotId);

      // The hidden filter lists it; the visible one does not.
      await page.goto(`${baseUrl}/admin/community?hidden=true`);
      expect(await page.locator(`article[data-snapshot-id="${snapshotId}"]`).count()).to.equal(1);
      await page.goto(`${baseUrl}/admin/community?hidden=false&status=ready`);
      expect(await page.locator(`article[data-snapshot-id="${snapshotId}"]`).count()).to.equal(0);

      await page.goto(`${baseUrl}/admin/community?hidden=true`);
      const hiddenCard = page.locator(`article[data-snapshot-id="${snapshotId}"]`);
      await hiddenCard.locator('input[name=reason]').fill('Appeal accepted');
      await hiddenCard.getByRole('button', { name: 'Unhide' }).click();
      await waitFor('the item back in the feed', async () => (await feedIds(user)).includes(snapshotId));
    } finally {
      await context.close();
    }
  });

  it('an admin removes an item with a reason: it is gone and the audit lists it', async () => {
    const { snapshotId, sessionId } = await readyItem('Browser remove');
    const context = await adminContext();
    try {
      const page = await context.newPage();
      await page.goto(`${baseUrl}/admin/community`);
      const card = page.locator(`article[data-snapshot-id="${snapshotId}"]`);
      await card.locator('input[name=reason]').fill('Copyright claim #42 <b>');
      await card.getByRole('button', { name: 'Remove' }).click();
      await waitFor('the card to leave the page', async () => (await page.locator(`article[data-snapshot-id="${snapshotId}"]`).count()) === 0);
      // The reason is shown as text, never as markup.
      const row = page.locator('#audit tbody tr').first();
      expect(await row.textContent()).to.contain('remove').and.contain('Copyright claim #42 <b>').and.contain(admin.email);

      expect(await t.knex('community_snapshots').where({ id: snapshotId }).first()).to.equal(undefined);
      expect((await t.knex('sessions').where({ id: sessionId }).first()).share_to_community).to.equal(false);
      const audit = (await t.http().get('/api/admin/audit?pageSize=1').set('Cookie', admin.cookie).expect(200)).body as { items: { action: string; snapshotId: number; reason: string }[] };
      expect(audit.items[0]).to.include({ action: 'remove', snapshotId, reason: 'Copyright claim #42 <b>' });

      if (process.env.MODERATION_SCREENSHOT) {
        await readyItem('Screenshot: a second item');
        await page.goto(`${baseUrl}/admin/community`);
        await page.screenshot({ path: process.env.MODERATION_SCREENSHOT, fullPage: false });
      }
    } finally {
      await context.close();
    }
  });

  it('the pages link to each other: the moderation page to the queues, bull-board back to moderation', async () => {
    const context = await adminContext();
    try {
      const page = await context.newPage();
      await page.goto(`${baseUrl}/admin/community`);
      await page.locator('header a[href="/admin/queues"]').click();
      await page.waitForURL(/\/admin\/queues/);
      // bull-board's own header: its links menu (the one popup button) holds the link back.
      await page.locator('header button[aria-haspopup="menu"]').click({ timeout: 15_000 });
      await page.getByRole('menuitem', { name: 'Community moderation' }).click({ timeout: 15_000 });
      await page.waitForURL(`${baseUrl}/admin/community`, { timeout: 15_000 });
      expect(await page.locator('article[data-snapshot-id], #audit').count(), 'the moderation page itself').to.be.above(0);
    } finally {
      await context.close();
    }
  });

  it('DASHBOARD_READ_ONLY=true: the page lists items but has no buttons', async () => {
    await readyItem('Read-only');
    const readOnly = createTestApp({ knex: t.knex, env: { DASHBOARD_READ_ONLY: 'true' }, deps: { queues: jobs.producer } });
    const res = await readOnly.http().get('/admin/community').set('Cookie', admin.cookie).set('Accept', 'text/html').expect(200);
    expect(res.text).to.contain('data-snapshot-id=').and.contain('Read-only');
    expect(res.text).to.not.contain('class="moderate"').and.not.contain('class="rerun"').and.not.contain('<script');
  });
});
