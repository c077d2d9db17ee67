import Router from '@koa/router';
import type { Knex } from '../../db/knex.js';
import { listModerationAudit, listSnapshotsForModeration } from '../../db/moderation.js';
import { SNAPSHOT_STATUSES, type SnapshotStatus } from '../../db/types.js';
import { adminPageGuard, DASHBOARD_PATH, refuseCrossSiteWrites } from '../dashboard.js';
import { fieldError } from '../errors.js';
import { requireAdmin } from '../middleware/auth.js';
import { jsonBody } from '../middleware/json-body.js';
import { MODERATION_PAGE_PATH, moderationPageHtml, PAGE_CONTENT_SECURITY_POLICY } from '../moderation-page.js';
import type { ModerateBody, Schemas } from '../schemas.js';
import { moderationAuditPageToApi, moderationResultToApi, snapshotRemovedToApi } from '../serializers.js';
import { liftModeration, normaliseReason, removeSnapshot, setHidden } from '../services/moderation.js';
import type { Validator } from '../validation.js';
import { parseId, parseIntParam, parseStringParam } from './params.js';

export interface ModerationRoutesDeps {
  knex: Knex;
  validator: Validator;
  schemas: Schemas;
  bodyLimitBytes: number;
  afterCommit: (outboxIds: number[]) => void;
  /** DASHBOARD_READ_ONLY: the page shows no buttons (the API still answers admins). */
  readOnly: boolean;
}

const isSnapshotStatus = (s: string): s is SnapshotStatus => (SNAPSHOT_STATUSES as readonly string[]).includes(s);

/**
 * Community moderation: `/api/admin/community/:id/hide|unhide`, `DELETE /api/admin/community/:id`,
 * `POST /api/admin/sessions/:id/community/lift` (each with a reason, audited in the same
 * transaction), `GET /api/admin/audit`, and the operators' page at `/admin/community`.
 */
export function moderationRoutes(deps: ModerationRoutesDeps): Router[] {
  const api = new Router({ prefix: '/api/admin' });
  api.use(requireAdmin, refuseCrossSiteWrites({ requireOrigin: false }));
  const body = jsonBody(deps.bodyLimitBytes);
  // No body at all reads as {}, so it is refused as "reason is required" like an empty object.
  const reasonOf = (raw: unknown): string => normaliseReason(deps.validator.validate<ModerateBody>(deps.schemas.moderate, raw ?? {}).reason);

  for (const hidden of [true, false]) {
    api.post(`/community/:id/${hidden ? 'hide' : 'unhide'}`, body, async (ctx) => {
      const id = parseId(ctx.params.id, 'id');
      const reason = reasonOf(ctx.request.body);
      ctx.body = moderationResultToApi(await setHidden(deps.knex, ctx.state.user!, id, hidden, reason));
    });
  }

  api.delete('/community/:id', body, async (ctx) => {
    const id = parseId(ctx.params.id, 'id');
    const reason = reasonOf(ctx.request.body);
    const result = await removeSnapshot(deps.knex, ctx.state.user!, id, reason);
    deps.afterCommit(result.outboxIds);
    ctx.body = snapshotRemovedToApi(result, result.outboxIds[0]!);
  });

  // A removal (or a hide that outlived its snapshot) stays with the session until this lifts it.
  api.post('/sessions/:id/community/lift', body, async (ctx) => {
    const id = parseId(ctx.params.id, 'id');
    const reason = reasonOf(ctx.request.body);
    ctx.body = moderationResultToApi(await liftModeration(deps.knex, ctx.state.user!, id, reason));
  });

  api.get('/audit', async (ctx) => {
    const page = parseIntParam(ctx.query.page, 'page', 1, 1, 1_000_000);
    const pageSize = parseIntParam(ctx.query.pageSize, 'pageSize', 50, 1, 200);
    const { rows, total } = await listModerationAudit(deps.knex, { limit: pageSize, offset: (page - 1) * pageSize });
    ctx.body = moderationAuditPageToApi(rows, total, page, pageSize);
  });

  const page = new Router();
  page.get(MODERATION_PAGE_PATH, adminPageGuard, async (ctx) => {
    const status = parseStringParam(ctx.query.status, 'status') || undefined;
    if (status !== undefined && !isSnapshotStatus(status)) throw fieldError('status', `must be one of: ${SNAPSHOT_STATUSES.join(', ')}`);
    const hiddenRaw = parseStringParam(ctx.query.hidden, 'hidden') || undefined;
    if (hiddenRaw !== undefined && hiddenRaw !== 'true' && hiddenRaw !== 'false') throw fieldError('hidden', 'must be "true" or "false"');
    const hidden = hiddenRaw === undefined ? undefined : hiddenRaw === 'true';
    const pageNumber = parseIntParam(ctx.query.page, 'page', 1, 1, 1_000_000);
    const pageSize = 25;
    const [snapshots, audit] = await Promise.all([
      listSnapshotsForModeration(deps.knex, {
        ...(status ? { status } : {}),
        ...(hidden !== undefined ? { hidden } : {}),
        limit: pageSize,
        offset: (pageNumber - 1) * pageSize,
      }),
      listModerationAudit(deps.knex, { limit: 10, offset: 0 }),
    ]);
    ctx.type = 'html';
    ctx.set('Content-Security-Policy', PAGE_CONTENT_SECURITY_POLICY);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = moderationPageHtml({
      snapshots: snapshots.rows,
      total: snapshots.total,
      page: pageNumber,
      pageSize,
      filter: { ...(status ? { status } : {}), ...(hidden !== undefined ? { hidden } : {}) },
      audit: audit.rows,
      readOnly: deps.readOnly,
      admin: ctx.state.user!,
      nav: [
        { text: 'Queues', url: DASHBOARD_PATH },
        { text: 'Community moderation', url: MODERATION_PAGE_PATH },
      ],
    });
  });

  return [api, page];
}
