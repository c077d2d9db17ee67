import Router from '@koa/router';
import { findReadySnapshot, listCommunity, listSnapshotMedia, type CommunityRow } from '../../db/community.js';
import type { Knex } from '../../db/knex.js';
import type { SnapshotMediaRow } from '../../db/types.js';
import { fieldError, notFound } from '../errors.js';
import { parseId, parseIntParam, parseStringParam } from './params.js';

function itemToApi(row: CommunityRow) {
  return {
    kind: 'session' as const,
    id: row.id,
    sessionId: row.session_id,
    title: row.title,
    thumbnail: row.thumbnail_url,
    subreddits: row.subreddits,
    categoryId: row.category_id,
    isManualMode: row.is_manual_mode,
    isImported: row.is_imported,
    createdAt: (row.ready_at ?? row.created_at).toISOString(),
    user: { id: row.user_id, firstName: row.creator_first_name },
  };
}

function snapshotMediaToApi(row: SnapshotMediaRow) {
  return {
    id: row.id,
    mediaUrl: row.blob_url,
    type: row.type,
    contentType: row.content_type,
    bytes: row.bytes,
    checksum: row.checksum,
    caption: row.caption,
    redditPostId: row.reddit_post_id,
    redditPostUrl: row.reddit_post_url,
    subreddit: row.subreddit,
    order: row.order,
  };
}

/** The community feed: ready snapshots only, served from their durable copies. */
export function communityRoutes(deps: { knex: Knex }): Router {
  const router = new Router({ prefix: '/api/community' });

  router.get('/', async (ctx) => {
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
      limit: pageSize,
      offset: (page - 1) * pageSize,
    });
    ctx.body = { items: rows.map(itemToApi), total, page, pageSize, totalPages: Math.ceil(total / pageSize) };
  });

  router.get('/sessions/:snapshotId', async (ctx) => {
    const id = parseId(ctx.params.snapshotId, 'snapshotId');
    const row = await findReadySnapshot(deps.knex, id);
    if (!row) throw notFound(`Community session ${id} not found`);
    const media = await listSnapshotMedia(deps.knex, id);
    ctx.body = {
      ...itemToApi(row),
      intervalMin: row.interval_min,
      intervalMax: row.interval_max,
      transition: row.transition,
      captionTheme: row.caption_theme,
      aiPrompt: row.ai_prompt,
      mediaCount: row.media_count,
      media: media.map(snapshotMediaToApi),
    };
  });

  return router;
}
