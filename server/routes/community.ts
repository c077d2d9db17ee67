import Router from '@koa/router';
import { findReadySnapshot, listCommunity, listSnapshotMedia } from '../../db/community.js';
import type { Knex } from '../../db/knex.js';
import { ADMIN_ROLES, type UserRow } from '../../db/types.js';
import { fieldError, notFound } from '../errors.js';
import { requireUser } from '../middleware/auth.js';
import { communityDetailToApi, communityPageToApi } from '../serializers.js';
import { parseId, parseIntParam, parseStringParam } from './params.js';

const isAdmin = (user: UserRow | undefined): boolean => user !== undefined && ADMIN_ROLES.includes(user.role);

/** The community feed: ready snapshots only, served from their durable copies. */
export function communityRoutes(deps: { knex: Knex }): Router {
  const router = new Router({ prefix: '/api/community' });

  router.get('/', requireUser, async (ctx) => {
    const sort = parseStringParam(ctx.query.sort, 'sort') ?? 'new';
    if (sort !== 'new' && sort !== 'top') throw fieldError('sort', 'must be "new" or "top"');
    const page = parseIntParam(ctx.query.page, 'page', 1, 1, 1_000_000);
    const pageSize = parseIntParam(ctx.query.pageSize, 'pageSize', 20, 1, 100);
    const categoryRaw = parseStringParam(ctx.query.categoryId, 'categoryId');
    const subreddit = parseStringParam(ctx.query.subreddit, 'subreddit', 64);
    const search = parseStringParam(ctx.query.search, 'search', 200);
    const creatorId = parseStringParam(ctx.query.creatorId, 'creatorId', 64);
    const { rows, total } = await listCommunity(deps.knex, {
      sort,
      ...(search ? { search } : {}),
      ...(subreddit ? { subreddit: subreddit.toLowerCase().replace(/^\/?r\//, '') } : {}),
      ...(creatorId ? { creatorId } : {}),
      ...(categoryRaw !== undefined ? { categoryId: parseId(categoryRaw, 'categoryId') } : {}),
      includeHidden: isAdmin(ctx.state.user),
      limit: pageSize,
      offset: (page - 1) * pageSize,
    });
    ctx.body = communityPageToApi(rows, total, page, pageSize);
  });

  router.get('/sessions/:snapshotId', requireUser, async (ctx) => {
    const id = parseId(ctx.params.snapshotId, 'snapshotId');
    const row = await findReadySnapshot(deps.knex, id);
    // A hidden item is shown to admins only; to anyone else it does not exist.
    if (!row || (row.is_hidden && !isAdmin(ctx.state.user))) throw notFound(`Community session ${id} not found`);
    const media = await listSnapshotMedia(deps.knex, id);
    ctx.body = communityDetailToApi(row, media);
  });

  return router;
}
