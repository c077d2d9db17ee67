import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Knex } from '../../db/knex.js';
import { createRouter } from '../routing.js';
import { savedToLibraryToApi } from '../serializers.js';
import { saveCommunityItem } from '../services/community-saves.js';
import { parseId } from './params.js';

/** Save to library: a community item copied into the caller's sessions. */
export function communitySaveRoutes(deps: { knex: Knex; rateLimit?: Middleware }): Router {
  const router = createRouter({ access: 'user', ...(deps.rateLimit ? { rateLimit: deps.rateLimit } : {}) });
  router.post('/api/community/sessions/:snapshotId/save', async (ctx) => {
    const result = await saveCommunityItem(deps.knex, ctx.state.user!, parseId(ctx.params.snapshotId, 'snapshotId'));
    ctx.body = savedToLibraryToApi(result.sessionId, result.reused);
  });
  return router;
}
