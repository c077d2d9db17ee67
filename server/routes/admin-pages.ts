import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Knex } from '../../db/knex.js';
import { listModerationAudit, listSnapshotsForModeration } from '../../db/moderation.js';
import { loginScript, MODERATION_SCRIPT } from '../admin-page-scripts.js';
import { DASHBOARD_PATH } from '../dashboard.js';
import { ADMIN_LOGIN_PATH } from '../middleware/guards.js';
import { PAGE_CONTENT_SECURITY_POLICY } from '../middleware/security-headers.js';
import { loginPageHtml, MODERATION_PAGE_PATH, MODERATION_SCRIPT_PATH, moderationPageHtml } from '../moderation-page.js';
import { createRouter } from '../routing.js';
import { pageWindow, queryOf } from './params.js';

const NAV = [
  { text: 'Queues', url: DASHBOARD_PATH },
  { text: 'Community moderation', url: MODERATION_PAGE_PATH },
];

function html(ctx: Context, body: string): void {
  ctx.type = 'html';
  ctx.set('Content-Security-Policy', PAGE_CONTENT_SECURITY_POLICY);
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}

function script(ctx: Context, body: string): void {
  ctx.type = 'application/javascript; charset=utf-8';
  ctx.set('Cache-Control', 'no-cache');
  ctx.body = body;
}

/**
 * The operators' own pages under `/admin` (bull-board is `dashboard.ts`): the login page and its
 * script, open to anyone, and the moderation page and its script, for admins. The app's `/admin`
 * prefix guard sends a browser that is not logged in to the login page.
 */
export function adminPageRoutes(deps: { knex: Knex; readOnly: boolean }): Router[] {
  const open = createRouter({ access: 'public' });
  const admin = createRouter({ access: 'admin' });
  const login = loginPageHtml({ nav: NAV, dashboardPath: DASHBOARD_PATH, scriptPath: `${ADMIN_LOGIN_PATH}.js` });
  const loginJs = loginScript(DASHBOARD_PATH);

  open.get(ADMIN_LOGIN_PATH, (ctx) => html(ctx, login));
  open.get(`${ADMIN_LOGIN_PATH}.js`, (ctx) => script(ctx, loginJs));
  admin.get(MODERATION_SCRIPT_PATH, (ctx) => script(ctx, MODERATION_SCRIPT));

  admin.get(MODERATION_PAGE_PATH, async (ctx) => {
    const { status, hidden, ...paging } = queryOf(ctx, 'GET /admin/community');
    const { page, pageSize, offset } = pageWindow(paging);
    const [snapshots, audit] = await Promise.all([
      listSnapshotsForModeration(deps.knex, { ...(status ? { status } : {}), ...(hidden !== undefined ? { hidden } : {}), limit: pageSize, offset }),
      listModerationAudit(deps.knex, { limit: 10, offset: 0 }),
    ]);
    html(
      ctx,
      moderationPageHtml({
        snapshots: snapshots.rows,
        total: snapshots.total,
        page,
        pageSize,
        filter: { ...(status ? { status } : {}), ...(hidden !== undefined ? { hidden } : {}) },
        audit: audit.rows,
        readOnly: deps.readOnly,
        admin: ctx.state.user!,
        nav: NAV,
      }),
    );
  });

  return [open, admin];
}
