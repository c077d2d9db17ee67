import type Router from '@koa/router';
import type { Knex } from '../../db/knex.js';
import type { WrittenOutboxJob } from '../../db/outbox.js';
import { listModerationAudit } from '../../db/moderation.js';
import { jsonBody } from '../middleware/json-body.js';
import { createRouter } from '../routing.js';
import type { ModerateBody, Schemas } from '../schemas.js';
import { moderationAuditPageToApi, moderationResultToApi, snapshotRemovedToApi } from '../serializers.js';
import { liftModeration, normaliseReason, removeSnapshot, setHidden } from '../services/moderation.js';
import type { Validator } from '../validation.js';
import { pageWindow, parseId, queryOf } from './params.js';

export interface ModerationRoutesDeps {
  knex: Knex;
  validator: Validator;
  schemas: Schemas;
  bodyLimitBytes: number;
  afterCommit: (written: readonly WrittenOutboxJob[]) => void;
}

/**
 * Community moderation: `/api/admin/community/:id/hide|unhide`, `DELETE /api/admin/community/:id`,
 * `POST /api/admin/sessions/:id/community/lift` (each with a reason, audited in the same
 * transaction) and `GET /api/admin/audit`. The operators' page is in `admin-pages.ts`.
 */
export function moderationRoutes(deps: ModerationRoutesDeps): Router {
  const api = createRouter({ access: 'admin' });
  const body = jsonBody(deps.bodyLimitBytes);
  // No body at all reads as {}, so it is refused as "reason is required" like an empty object.
  const reasonOf = (raw: unknown): string => normaliseReason(deps.validator.validate<ModerateBody>(deps.schemas.moderate, raw ?? {}).reason);

  for (const hidden of [true, false]) {
    api.post(`/api/admin/community/:id/${hidden ? 'hide' : 'unhide'}`, body, async (ctx) => {
      const id = parseId(ctx.params.id, 'id');
      const reason = reasonOf(ctx.request.body);
      ctx.body = moderationResultToApi(await setHidden(deps.knex, ctx.state.user!, id, hidden, reason));
    });
  }

  api.delete('/api/admin/community/:id', body, async (ctx) => {
    const id = parseId(ctx.params.id, 'id');
    const reason = reasonOf(ctx.request.body);
    const result = await removeSnapshot(deps.knex, ctx.state.user!, id, reason);
    deps.afterCommit(result.outbox);
    ctx.body = snapshotRemovedToApi(result, result.outbox[0]!.id);
  });

  // A removal (or a hide that outlived its snapshot) stays with the session until this lifts it.
  api.post('/api/admin/sessions/:id/community/lift', body, async (ctx) => {
    const id = parseId(ctx.params.id, 'id');
    const reason = reasonOf(ctx.request.body);
    ctx.body = moderationResultToApi(await liftModeration(deps.knex, ctx.state.user!, id, reason));
  });

  api.get('/api/admin/audit', async (ctx) => {
    const { page, pageSize, offset } = pageWindow(queryOf(ctx, 'GET /api/admin/audit'));
    const { rows, total } = await listModerationAudit(deps.knex, { limit: pageSize, offset });
    ctx.body = moderationAuditPageToApi(rows, total, page, pageSize);
  });

  return api;
}
