import type { ModerationAuditEntry, ModeratedSnapshotRow } from '../db/moderation.js';
import { SNAPSHOT_STATUSES, type SnapshotStatus, type AccountRow } from '../db/types.js';

export const MODERATION_PAGE_PATH = '/admin/community';
/** The pages' scripts are files of their own (`admin-page-scripts.ts`): their CSP allows no inline script. */
export const MODERATION_SCRIPT_PATH = `${MODERATION_PAGE_PATH}.js`;

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text made safe for HTML content and quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** Only http(s) URLs become image sources. */
function safeImageUrl(url: string | null): string | null {
  return url && /^https?:\/\//i.test(url) ? url : null;
}

// Beside bull-board: its dark header bar, light cards on a pale page, the system font stack.
const STYLE = `
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;font-size:14px;color:#1f2937;background:#f1f5f9}
header{background:#1e293b;color:#f8fafc;display:flex;align-items:center;gap:1.5rem;padding:0 1.5rem;height:56px}
header h1{font-size:1.1rem;font-weight:600;margin:0}
header nav{display:flex;gap:1rem;margin-left:auto}
header a{color:#cbd5e1;text-decoration:none}
header a:hover,header a[aria-current=page]{color:#fff;text-decoration:underline}
main{padding:1.5rem;max-width:1400px;margin:0 auto}
main.narrow{max-width:26rem;margin-top:3rem}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;box-shadow:0 1px 2px rgba(15,23,42,.06);padding:1rem}
h2{font-size:1rem;margin:0 0 .8rem}
label{display:block;margin:.6rem 0;font-weight:500}
input,select{font:inherit;padding:.4rem .5rem;border:1px solid #cbd5e1;border-radius:6px;background:#fff}
label input{display:block;width:100%;margin-top:.25rem}
button{font:inherit;padding:.35rem .8rem;border-radius:6px;border:1px solid #cbd5e1;background:#f8fafc;cursor:pointer}
button:hover{background:#e2e8f0}
button.primary{background:#2563eb;border-color:#2563eb;color:#fff}
button.danger{background:#dc2626;border-color:#dc2626;color:#fff}
.muted{color:#64748b}
.error{color:#b91c1c}
.filters{display:flex;gap:1rem;align-items:end;flex-wrap:wrap;margin-bottom:1rem}
.filters label{margin:0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:1rem}
.item{display:flex;flex-direction:column;gap:.5rem;padding:0;overflow:hidden}
.item.hidden{opacity:.8;border-color:#f59e0b}
.thumb{width:100%;aspect-ratio:16/9;object-fit:cover;background:#e2e8f0;display:block}
.nothumb{display:flex;align-items:center;justify-content:center;color:#94a3b8}
.body{padding:0 1rem 1rem;display:flex;flex-direction:column;gap:.45rem}
.title{font-weight:600;font-size:1rem;word-break:break-word}
.badges{display:flex;gap:.4rem;flex-wrap:wrap}
.badge{font-size:12px;padding:.1rem .5rem;border-radius:999px;background:#e2e8f0}
.badge.ready{background:#dcfce7;color:#166534}.badge.failed{background:#fee2e2;color:#991b1b}
.badge.copying,.badge.pending{background:#dbeafe;color:#1e40af}.badge.hidden{background:#fef3c7;color:#92400e}
progress{width:100%;height:8px}
.actions{display:flex;flex-direction:column;gap:.4rem;border-top:1px solid #e2e8f0;padding-top:.6rem}
.actions .row{display:flex;gap:.4rem;flex-wrap:wrap}
.actions input{width:100%}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid #e2e8f0;vertical-align:top}
.pager{display:flex;gap:1rem;align-items:center;margin:1rem 0}
.centred{text-align:center}
`;

export interface PageLink {
  text: string;
  url: string;
}

/** An operator page: the dark header with the title and links between the pages, then the body (already HTML). */
export function adminPage(page: { title: string; heading: string; nav: PageLink[]; current?: string; body: string }): string {
  const nav = page.nav
    .map((l) => `<a href="${escapeHtml(l.url)}"${l.url === page.current ? ' aria-current="page"' : ''}>${escapeHtml(l.text)}</a>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(page.title)}</title><style>${STYLE}</style></head>
<body><header><h1>${escapeHtml(page.heading)}</h1><nav>${nav}</nav></header>
${page.body}
</body></html>`;
}

export interface ModerationView {
  snapshots: ModeratedSnapshotRow[];
  total: number;
  page: number;
  pageSize: number;
  filter: { status?: SnapshotStatus; hidden?: boolean };
  audit: ModerationAuditEntry[];
  readOnly: boolean;
  admin: AccountRow;
  /** Links to the other operator pages. */
  nav: PageLink[];
}

function query(filter: ModerationView['filter'], page: number): string {
  const params = new URLSearchParams();
  if (filter.status) params.set('status', filter.status);
  if (filter.hidden !== undefined) params.set('hidden', String(filter.hidden));
  if (page > 1) params.set('page', String(page));
  const text = params.toString();
  return `${MODERATION_PAGE_PATH}${text ? `?${text}` : ''}`;
}

function option(value: string, label: string, selected: boolean): string {
  return `<option value="${escapeHtml(value)}"${selected ? ' selected' : ''}>${escapeHtml(label)}</option>`;
}

function filters(filter: ModerationView['filter']): string {
  const hidden = filter.hidden === undefined ? '' : String(filter.hidden);
  return `<form class="filters card" method="get" action="${MODERATION_PAGE_PATH}">
<label>Status <select name="status">${option('', 'any', !filter.status)}${SNAPSHOT_STATUSES.map((s) => option(s, s, filter.status === s)).join('')}</select></label>
<label>Hidden <select name="hidden">${option('', 'any', hidden === '')}${option('true', 'hidden', hidden === 'true')}${option('false', 'visible', hidden === 'false')}</select></label>
<button type="submit">Filter</button></form>`;
}

function item(row: ModeratedSnapshotRow, readOnly: boolean): string {
  const image = safeImageUrl(row.thumbnail_url ?? row.source_thumbnail);
  const thumb = image
    ? `<img class="thumb" src="${escapeHtml(image)}" alt="" loading="lazy" referrerpolicy="no-referrer">`
    : '<div class="thumb nothumb">no thumbnail</div>';
  // Likes arrive with their own migration; until the column exists there is nothing to show.
  const likes = (row as { like_count?: number }).like_count;
  const actions = readOnly
    ? ''
    : `<div class="actions">
<form class="moderate" data-id="${row.id}"><input name="reason" required maxlength="500" placeholder="Reason (required)" aria-label="Reason for ${escapeHtml(row.title)}">
<div class="row">${row.is_hidden ? '<button type="submit" value="unhide">Unhide</button>' : '<button type="submit" value="hide">Hide</button>'}
<button type="submit" value="remove" class="danger">Remove</button></div></form>
<form class="rerun" data-id="${row.id}"><button type="submit">Rerun copy</button></form>
<p class="error" role="alert"></p></div>`;
  return `<article class="card item${row.is_hidden ? ' hidden' : ''}" data-snapshot-id="${row.id}">${thumb}<div class="body">
<div class="title">${escapeHtml(row.title)}</div>
<div class="muted">#${row.id} · session ${row.session_id} · by ${escapeHtml(row.creator_first_name ?? '')} &lt;${escapeHtml(row.creator_email ?? row.user_id)}&gt;</div>
<div class="badges"><span class="badge ${escapeHtml(row.status)}">${escapeHtml(row.status)}</span>${row.is_hidden ? '<span class="badge hidden">hidden</span>' : ''}${likes === undefined ? '' : `<span class="badge">${Number(likes)} likes</span>`}</div>
<div><progress max="${Math.max(row.media_count, 1)}" value="${row.copied_count}"></progress><span class="muted">${row.copied_count}/${row.media_count} media copied · ${row.attempts} attempts</span></div>
${row.last_error ? `<div class="error">Last error: ${escapeHtml(row.last_error)}</div>` : ''}
${actions}</div></article>`;
}

function auditTable(entries: ModerationAuditEntry[]): string {
  if (entries.length === 0) return '<p class="muted">No moderation actions yet.</p>';
  const rows = entries
    .map(
      (e) => `<tr><td>${escapeHtml(e.created_at.toISOString())}</td><td>${escapeHtml(e.admin_email ?? e.admin_id)}</td><td>${escapeHtml(e.action)}</td>
<td>#${e.snapshot_id} ${escapeHtml(e.snapshot_title ?? '')}</td><td>${escapeHtml(e.reason)}</td></tr>`,
    )
    .join('');
  return `<table><thead><tr><th>When</th><th>Who</th><th>Action</th><th>Item</th><th>Why</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** `/admin/community`: every snapshot with its thumbnail, state and the moderation buttons, and the latest audit entries. */
export function moderationPageHtml(view: ModerationView): string {
  const pages = Math.max(1, Math.ceil(view.total / view.pageSize));
  const pager = `<div class="pager">${view.page > 1 ? `<a href="${escapeHtml(query(view.filter, view.page - 1))}">← Newer</a>` : ''}
<span class="muted">Page ${view.page} of ${pages} · ${view.total} items</span>${view.page < pages ? `<a href="${escapeHtml(query(view.filter, view.page + 1))}">Older →</a>` : ''}</div>`;
  const body = `<main>
${view.readOnly ? '<p class="card muted">Read-only (DASHBOARD_READ_ONLY): moderation buttons are off.</p>' : ''}
${filters(view.filter)}
${pager}
<section class="grid">${view.snapshots.map((row) => item(row, view.readOnly)).join('') || '<p class="muted">No snapshots match.</p>'}</section>
${pager}
<section class="card" id="audit"><h2>Recent moderation (<a href="/api/admin/audit">full audit</a>)</h2>${auditTable(view.audit)}</section>
</main>${view.readOnly ? '' : `<script src="${MODERATION_SCRIPT_PATH}" defer></script>`}`;
  return adminPage({
    title: 'Showrunner: community moderation',
    heading: 'Showrunner community moderation',
    nav: view.nav,
    current: MODERATION_PAGE_PATH,
    body: `${body}<p class="muted centred">Logged in as ${escapeHtml(view.admin.email)}</p>`,
  });
}

/** `/admin/login`: email and password, posted by its script to the JSON login; then on to `next` under /admin. */
export function loginPageHtml(page: { nav: PageLink[]; dashboardPath: string; scriptPath: string }): string {
  return adminPage({
    title: 'Showrunner operators: log in',
    heading: 'Showrunner operators',
    nav: page.nav,
    body: `<main class="narrow"><section class="card">
<h2>Log in</h2>
<form id="login"><label>Email <input id="email" name="email" type="email" autocomplete="username" required></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password" required></label>
<button type="submit" class="primary">Log in</button><p id="error" class="error" role="alert"></p></form>
<p class="muted">After logging in: <a href="${escapeHtml(page.dashboardPath)}">job queues</a> or <a href="${MODERATION_PAGE_PATH}">community moderation</a>.</p>
</section></main>
<script src="${escapeHtml(page.scriptPath)}" defer></script>`,
  });
}
