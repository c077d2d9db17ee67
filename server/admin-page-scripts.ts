import { ADMIN_ROLES } from '../db/types.js';

/**
 * The operator pages' scripts, served as files (`routes/admin-pages.ts`) so the pages' CSP can
 * refuse every inline script (`middleware/security-headers.ts`). Plain browser JavaScript.
 */

/** The login page: posts to the JSON login, then goes on to `?next=` when it is a path under /admin. */
export function loginScript(dashboardPath: string): string {
  return `'use strict';
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
  if (!${JSON.stringify(ADMIN_ROLES)}.includes(user.role)) { error.textContent = 'This account is not an administrator.'; return; }
  const next = new URLSearchParams(location.search).get('next');
  location.href = next && next.startsWith('/admin/') && !next.startsWith('/admin//') ? next : ${JSON.stringify(dashboardPath)};
});
`;
}

/** The moderation page: writes go to the JSON API with the login cookie; the browser adds Origin, which the API checks. */
export const MODERATION_SCRIPT = `'use strict';
const act = async (form, method, url, body) => {
  const error = form.closest('.actions').querySelector('.error');
  error.textContent = '';
  const res = await fetch(url, { method, credentials: 'same-origin', headers: body ? { 'Content-Type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  if (!res.ok) { error.textContent = (await res.json().catch(() => ({}))).message || ('Failed: HTTP ' + res.status); return; }
  location.reload();
};
for (const form of document.querySelectorAll('form.moderate')) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const action = event.submitter ? event.submitter.value : 'hide';
    const base = '/api/admin/community/' + form.dataset.id;
    const reason = form.elements.reason.value;
    if (action === 'remove') act(form, 'DELETE', base, { reason });
    else act(form, 'POST', base + '/' + action, { reason });
  });
}
for (const form of document.querySelectorAll('form.rerun')) {
  form.addEventListener('submit', (event) => { event.preventDefault(); act(form, 'POST', '/api/admin/snapshots/' + form.dataset.id + '/rerun'); });
}
`;
