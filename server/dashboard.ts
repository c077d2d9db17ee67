import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { KoaAdapter } from '@bull-board/koa';
import type { Context, Middleware } from 'koa';
import { QUEUE_NAMES, type JobProducer } from '../workers/index.js';
import { ADMIN_ROLES } from '../db/types.js';
import { forbidden, unauthorized } from './errors.js';
import { adminPage, MODERATION_PAGE_PATH, PAGE_CONTENT_SECURITY_POLICY } from './moderation-page.js';

export const DASHBOARD_PATH = '/admin/queues';
export const LOGIN_PATH = '/admin/login';

/**
 * bull-board at `/admin/queues` for admins only. A browser that is not logged in is sent to a login
 * page; an API call gets 401, a non-admin 403. State-changing requests (retry, promote, clean,
 * remove) must come from this origin: a cross-site form or fetch is refused.
 */
export function dashboard(queues: JobProducer, options: { readOnly: boolean }): Middleware[] {
  const serverAdapter = new KoaAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: QUEUE_NAMES.map((name) => new BullMQAdapter(queues.queues[name], { readOnlyMode: options.readOnly, allowRetries: !options.readOnly })),
    serverAdapter,
    // The bull-board page is bull-board's; this link in its header leads back to the moderation page.
    options: { uiConfig: { boardTitle: 'Showrunner jobs', miscLinks: [{ text: 'Community moderation', url: MODERATION_PAGE_PATH }] } },
  });

  const guard: Middleware = async (ctx, next) => {
    if (!ctx.path.startsWith('/admin')) return next();
    if (ctx.path === LOGIN_PATH) return next();
    return adminPageGuard(ctx, next);
  };

  const loginPage: Middleware = async (ctx, next) => {
    if (ctx.path !== LOGIN_PATH || ctx.method !== 'GET') return next();
    ctx.type = 'html';
    ctx.set('Content-Security-Policy', PAGE_CONTENT_SECURITY_POLICY);
    ctx.body = LOGIN_HTML;
  };

  return [guard, loginPage, serverAdapter.registerPlugin()];
}

/**
 * Refuses a state change whose `Origin` is another site's. With `requireOrigin` a request without
 * one is refused too (the dashboard's pages are only ever written to by a browser, which sends it);
 * the JSON API also serves curl and scripts, which send none and carry no ambient cookie.
 */
export function refuseCrossSiteWrites(options: { requireOrigin: boolean }): Middleware {
  return async (ctx: Context, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      const origin = ctx.get('origin');
      const expected = `${ctx.protocol}://${ctx.host}`;
      if ((origin || options.requireOrigin) && origin !== expected) {
        throw forbidden(`Cross-site request refused (Origin ${origin || 'missing'}, expected ${expected})`);
      }
    }
    return next();
  };
}

const sameOriginOnly = refuseCrossSiteWrites({ requireOrigin: true });

/**
 * The guard of every operator page under `/admin`: writes only from this origin, admins only; a
 * browser that is not logged in is sent to the login page, an API call gets 401, a non-admin 403.
 */
export const adminPageGuard: Middleware = (ctx, next) =>
  sameOriginOnly(ctx, async () => {
    const user = ctx.state.user;
    const isAdmin = user !== undefined && ADMIN_ROLES.includes(user.role);
    if (!isAdmin) {
      if (!user && ctx.method === 'GET' && ctx.accepts('html', 'json') === 'html' && !ctx.path.startsWith(`${DASHBOARD_PATH}/api`)) {
        ctx.redirect(`${LOGIN_PATH}?next=${encodeURIComponent(ctx.originalUrl)}`);
        return;
      }
      throw user ? forbidden('Administrator role required') : unauthorized();
    }
    return next();
  });

const LOGIN_HTML = adminPage({
  title: 'Showrunner operators: log in',
  heading: 'Showrunner operators',
  nav: [
    { text: 'Queues', url: DASHBOARD_PATH },
    { text: 'Community moderation', url: MODERATION_PAGE_PATH },
  ],
  body: `<main class="narrow"><section class="card">
<h2>Log in</h2>
<form id="login"><label>Email <input id="email" name="email" type="email" autocomplete="username" required></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password" required></label>
<button type="submit" class="primary">Log in</button><p id="error" class="error" role="alert"></p></form>
<p class="muted">After logging in: <a href="${DASHBOARD_PATH}">job queues</a> or <a href="${MODERATION_PAGE_PATH}">community moderation</a>.</p>
</section></main>
<script>
document.getElementById('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  const error = document.getElementById('error');
  error.textContent = '';
  const res = await fetch('/api/auth/login', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, credentials: 'same-origin',
    body: JSON.stringify({ email: document.getElementById('email').value, password: document.getElementById('password').value }),
  });
  if (!res.ok) { error.textContent = (await res.json().catch(() => ({}))).message || 'Login failed'; return; }
  const user = await res.json();
  if (user.role !== 'admin' && user.role !== 'super_admin') { error.textContent = 'This account is not an administrator.'; return; }
  const next = new URLSearchParams(location.search).get('next');
  location.href = next && next.startsWith('/admin/') ? next : '${DASHBOARD_PATH}';
});
</script>`,
});
