import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { KoaAdapter } from '@bull-board/koa';
import type { Middleware } from 'koa';
import { QUEUE_NAMES, type JobProducer } from '../workers/index.js';
import { ADMIN_ROLES } from '../db/types.js';
import { forbidden, unauthorized } from './errors.js';

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
    options: { uiConfig: { boardTitle: 'Showrunner jobs' } },
  });

  const guard: Middleware = async (ctx, next) => {
    if (!ctx.path.startsWith('/admin')) return next();
    if (ctx.path === LOGIN_PATH) return next();
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      const origin = ctx.get('origin');
      const expected = `${ctx.protocol}://${ctx.host}`;
      if (!origin || origin !== expected) throw forbidden(`Cross-site request refused (Origin ${origin || 'missing'}, expected ${expected})`);
    }
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
  };

  const loginPage: Middleware = async (ctx, next) => {
    if (ctx.path !== LOGIN_PATH || ctx.method !== 'GET') return next();
    ctx.type = 'html';
    ctx.set('Content-Security-Policy', "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'");
    ctx.body = LOGIN_HTML;
  };

  return [guard, loginPage, serverAdapter.registerPlugin()];
}

const LOGIN_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Showrunner operators: log in</title>
<style>body{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto}label{display:block;margin:.8rem 0}
input{width:100%;padding:.4rem}button{padding:.5rem 1rem}#error{color:#b00020}</style></head>
<body><h1>Showrunner operators</h1>
<form id="login"><label>Email <input id="email" name="email" type="email" autocomplete="username" required></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button><p id="error" role="alert"></p></form>
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
  location.href = next && next.startsWith('/admin/') ? next : '/admin/queues';
});
</script></body></html>`;
