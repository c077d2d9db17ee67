import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { setLike } from '../../db/community-likes.js';
import { findReadySnapshot, listCommunity, listSnapshotMedia } from '../../db/community.js';
import type { Knex } from '../../db/knex.js';
import { notFound } from '../errors.js';
import { isAdmin } from '../middleware/guards.js';
import { createRouter } from '../routing.js';
import { communityDetailToApi, communityPageToApi, likeToApi } from '../serializers.js';
import { pageWindow, parseId, queryOf } from './params.js';

/** The community feed: ready snapshots only, served from their durable copies. */
export function communityRoutes(deps: { knex: Knex; rateLimit?: Middleware }): Router {
  const router = createRouter({ access: 'user', ...(deps.rateLimit ? { rateLimit: deps.rateLimit } : {}) });

  router.get('/api/community', async (ctx) => {
    const { sort, contentType, search, subreddit, creatorId, creator, categoryId, categorySlug, ...paging } = queryOf(ctx, 'GET /api/community');
    const { page, pageSize, offset } = pageWindow(paging);
    const { rows, total } = await listCommunity(deps.knex, {
      sort,
      contentType,
      ...(search ? { search } : {}),
      ...(subreddit ? { subreddit: subreddit.toLowerCase().replace(/^\/?r\//, '') } : {}),
      ...(creatorId ? { creatorId } : {}),
      ...(creator ? { creator } : {}),
      ...(categoryId !== undefined ? { categoryId } : {}),
      ...(categorySlug !== undefined ? { categorySlug } : {}),
      ...(ctx.state.user ? { viewerId: ctx.state.user.id } : {}),
      includeHidden: isAdmin(ctx.state.user),
      limit: pageSize,
      offset,
    });
    ctx.body = communityPageToApi(rows, total, page, pageSize);
  });

  router.get('/api/community/sessions/:snapshotId', async (ctx) => {
    const id = parseId(ctx.params.snapshotId, 'snapshotId');
    const row = await findReadySnapshot(deps.knex, id, ctx.state.user?.id);
    // A hidden item is shown to admins only; to anyone else it does not exist.
    if (!row || (row.is_hidden && !isAdmin(ctx.state.user))) throw notFound(`Community session ${id} not found`);
    const media = await listSnapshotMedia(deps.knex, id);
    ctx.body = communityDetailToApi(row, media);
  });

  // Idempotent both ways: liking twice is one like, unliking what is not liked changes nothing.
  for (const [method, liked] of [['post', true], ['delete', false]] as const) {
    router[method]('/api/community/sessions/:snapshotId/like', async (ctx) => {
      const id = parseId(ctx.params.snapshotId, 'snapshotId');
      const state = await setLike(deps.knex, ctx.state.user!.id, id, liked);
      if (!state) throw notFound(`Community session ${id} not found`);
      ctx.body = likeToApi(state);
    });
  }

  return router;
}
