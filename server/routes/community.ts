import Router from '@koa/router';
import { setLike } from '../../db/community-likes.js';
import { COMMUNITY_CONTENT_TYPES, COMMUNITY_SORTS, findReadySnapshot, listCommunity, listSnapshotMedia } from '../../db/community.js';
import type { Knex } from '../../db/knex.js';
import { ADMIN_ROLES, type UserRow } from '../../db/types.js';
import { notFound } from '../errors.js';
import { requireUser } from '../middleware/auth.js';
import { communityDetailToApi, communityPageToApi, likeToApi } from '../serializers.js';
import { parseEnumParam, parseId, parseIntParam, parseStringParam } from './params.js';

const isAdmin = (user: UserRow | undefined): boolean => user !== undefined && ADMIN_ROLES.includes(user.role);

/** The community feed: ready snapshots only, served from their durable copies. */
export function communityRoutes(deps: { knex: Knex }): Router {
  const router = new Router({ prefix: '/api/community' });

  router.get('/', requireUser, async (ctx) => {
    const sort = parseEnumParam(ctx.query.sort, 'sort', COMMUNITY_SORTS) ?? 'new';
    const contentType = parseEnumParam(ctx.query.contentType, 'contentType', COMMUNITY_CONTENT_TYPES);
    const page = parseIntParam(ctx.query.page, 'page', 1, 1, 1_000_000);
    const pageSize = parseIntParam(ctx.query.pageSize, 'pageSize', 20, 1, 100);
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
      offset: (page - 1) * pageSize,
    });
    ctx.body = communityPageToApi(rows, total, page, pageSize);
  });

  router.get('/sessions/:snapshotId', requireUser, async (ctx) => {
    const id = parseId(ctx.params.snapshotId, 'snapshotId');
    const row = await findReadySnapshot(deps.knex, id, ctx.state.user?.id);
    // A hidden item is shown to admins only; to anyone else it does not exist.
    if (!row || (row.is_hidden && !isAdmin(ctx.state.user))) throw notFound(`Community session ${id} not found`);
    const media = await listSnapshotMedia(deps.knex, id);
    ctx.body = communityDetailToApi(row, media);
  });

  // Idempotent both ways: liking twice is one like, unliking what is not liked changes nothing.
  for (const [method, liked] of [['post', true], ['delete', false]] as const) {
    router[method]('/sessions/:snapshotId/like', requireUser, async (ctx) => {
      const id = parseId(ctx.params.snapshotId, 'snapshotId');
      const state = await setLike(deps.knex, ctx.state.user!.id, id, liked);
      if (!state) throw notFound(`Community session ${id} not found`);
      ctx.body = likeToApi(state);
    });
  }

  return router;
}
