import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { setLike } from '../../db/community-likes.js';
import { COMMUNITY_CONTENT_TYPES, COMMUNITY_SORTS, findReadySnapshot, listCommunity, listSnapshotMedia } from '../../db/community.js';
import type { Knex } from '../../db/knex.js';
import { notFound } from '../errors.js';
import { isAdmin } from '../middleware/guards.js';
import { createRouter } from '../routing.js';
import { communityDetailToApi, communityPageToApi, likeToApi } from '../serializers.js';
import { parseEnumParam, parseId, parsePage, parseStringParam } from './params.js';

/** The community feed: ready snapshots only, served from their durable copies. */
export function communityRoutes(deps: { knex: Knex; rateLimit?: Middleware }): Router {
  const router = createRouter({ access: 'user', ...(deps.rateLimit ? { rateLimit: deps.rateLimit } : {}) });

  router.get('/api/community', async (ctx) => {
    const sort = parseEnumParam(ctx.query.sort, 'sort', COMMUNITY_SORTS) ?? 'new';
    const contentType = parseEnumParam(ctx.query.contentType, 'contentType', COMMUNITY_CONTENT_TYPES);
    const { page, pageSize, offset } = parsePage(ctx.query, { defaultSize: 20, maxSize: 100 });
    const categoryRaw = parseStringParam(ctx.query.categoryId, 'categoryId');
    const subreddit = parseStringParam(ctx.query.subreddit, 'subreddit', 64);
    const search = parseStringParam(ctx.query.search, 'search', 200);
    const creatorId = parseStringParam(ctx.query.creatorId, 'creatorId', 64);
    const creator = parseStringParam(ctx.query.creator, 'creator', 100);
    const categorySlug = parseStringParam(ctx.query.categorySlug, 'categorySlug', 120);
    const { rows, total } = await listCommunity(deps.knex, {
      sort,
      ...(contentType ? { contentType } : {}),
      ...(search ? { search } : {}),
      ...(subreddit ? { subreddit: subreddit.toLowerCase().replace(/^\/?r\//, '') } : {}),
      ...(creatorId ? { creatorId } : {}),
      ...(creator ? { creator } : {}),
      ...(categoryRaw !== undefined ? { categoryId: parseId(categoryRaw, 'categoryId') } : {}),
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
