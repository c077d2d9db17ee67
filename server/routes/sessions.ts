import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { findCategoryBySlug } from '../../db/categories.js';
import type { Knex } from '../../db/knex.js';
import type { WrittenOutboxJob } from '../../db/outbox.js';
import { findSession, listSessionMedia, listSessions, snapshotsForSessions } from '../../db/sessions.js';
import { findSnapshotBySession } from '../../db/snapshots.js';
import { notFound } from '../errors.js';
import { jsonBody } from '../middleware/json-body.js';
import { createRouter } from '../routing.js';
import { SESSIONS_PAGE_SIZE, type CreateSessionBody, type Schemas, type SessionBody } from '../schemas.js';
import { mediaToApi, sessionEtag, sessionToApi } from '../serializers.js';
import { createSession, deleteSession, patchSession, type SessionServiceDeps } from '../services/sessions.js';
import type { Validator } from '../validation.js';
import type { ThumbnailUrlPolicy } from '../../workers/index.js';
import { MAX_PAGE_DEPTH, pageWindow, parseId, queryOf } from './params.js';

export interface SessionRoutesDeps {
  knex: Knex;
  validator: Validator;
  schemas: Schemas;
  bodyLimitBytes: number;
  defaultCaptionTheme: string;
  /** The rule a thumbnail URL on our own storage must meet. */
  thumbnailUrls: ThumbnailUrlPolicy;
  /** Called after COMMIT with the outbox rows the transaction wrote. */
  afterCommit: (committed: readonly WrittenOutboxJob[]) => void;
  /** The API-wide rate limit, when on. */
  rateLimit?: Middleware;
}

export function sessionRoutes(deps: SessionRoutesDeps): Router {
  const router = createRouter({ access: 'user', ...(deps.rateLimit ? { rateLimit: deps.rateLimit } : {}) });
  const service: SessionServiceDeps = { knex: deps.knex, defaultCaptionTheme: deps.defaultCaptionTheme, thumbnailUrls: deps.thumbnailUrls };
  const body = jsonBody(deps.bodyLimitBytes);

  router.get('/api/sessions', async (ctx) => {
    const query = queryOf(ctx, 'GET /api/sessions');
    const paged = query.page !== undefined || query.pageSize !== undefined;
    const { page, pageSize, offset } = pageWindow({ page: query.page ?? 1, pageSize: query.pageSize ?? (paged ? SESSIONS_PAGE_SIZE.default : SESSIONS_PAGE_SIZE.cap) });
    let categoryId = query.categoryId;
    const slug = query.categorySlug;
    if (slug !== undefined) {
      const category = await findCategoryBySlug(deps.knex, slug);
      // An unknown slug matches nothing, like an unknown id.
      if (!category || (categoryId !== undefined && category.id !== categoryId)) categoryId = -1;
      else categoryId = category.id;
    }
    const { rows, total } = await listSessions(deps.knex, {
      userId: ctx.state.user!.id,
      ...(categoryId !== undefined ? { categoryId } : {}),
      limit: pageSize,
      offset,
    });
    const snapshots = await snapshotsForSessions(deps.knex, rows.map((r) => r.id));
    ctx.set('X-Total-Count', String(total));
    // No link to a page past the deepest one a page may reach (it would answer 400).
    if (offset + rows.length < total && (page + 1) * pageSize <= MAX_PAGE_DEPTH) ctx.set('Link', nextPageLink(ctx.path, ctx.querystring, page + 1, pageSize));
    ctx.body = rows.map((r) => sessionToApi(r, snapshots.get(r.id), ctx.state.user!.id));
  });

  router.post('/api/sessions', body, async (ctx) => {
    const input = deps.validator.validate<CreateSessionBody>(deps.schemas.createSession, ctx.request.body);
    const result = await createSession(service, ctx.state.user!, input);
    deps.afterCommit(result.outbox);
    ctx.status = 201;
    ctx.set('ETag', sessionEtag(result.session));
    ctx.set('Location', `/api/sessions/${result.session.id}`);
    ctx.body = sessionToApi(result.session, result.snapshot, ctx.state.user!.id);
  });

  // As in the reference, reading needs a login; a public session is then readable by any user.
  router.get('/api/sessions/:id', async (ctx) => {
    const id = parseId(ctx.params.id, 'id');
    const session = await findSession(deps.knex, id);
    // Someone else's private session answers exactly like a missing one.
    if (!session || (!session.is_public && session.user_id !== ctx.state.user!.id)) throw notFound(`Session ${id} not found`);
    const [media, snapshot] = await Promise.all([listSessionMedia(deps.knex, id), findSnapshotBySession(deps.knex, id)]);
    ctx.set('ETag', sessionEtag(session));
    ctx.body = { session: sessionToApi(session, snapshot, ctx.state.user!.id), media: media.map(mediaToApi) };
  });

  router.patch('/api/sessions/:id', body, async (ctx) => {
    const id = parseId(ctx.params.id, 'id');
    const input = deps.validator.validate<SessionBody>(deps.schemas.patchSession, ctx.request.body);
    const ifMatch = ctx.get('if-match') || undefined;
    const result = await patchSession(service, ctx.state.user!, id, input, ifMatch);
    deps.afterCommit(result.outbox);
    ctx.set('ETag', sessionEtag(result.session));
    ctx.body = sessionToApi(result.session, result.snapshot, ctx.state.user!.id);
  });

  router.delete('/api/sessions/:id', async (ctx) => {
    const id = parseId(ctx.params.id, 'id');
    const result = await deleteSession(service, ctx.state.user!, id);
    deps.afterCommit(result.outbox);
    ctx.status = 204;
  });

  return router;
}

/** An RFC 8288 `Link` to the next page: the same query (filters kept) with its `page` and `pageSize`. */
function nextPageLink(path: string, querystring: string, page: number, pageSize: number): string {
  const query = new URLSearchParams(querystring);
  query.set('page', String(page));
  query.set('pageSize', String(pageSize));
  return `<${path}?${query.toString()}>; rel="next"`;
}
