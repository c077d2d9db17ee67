import Router from '@koa/router';
import type { Knex } from '../../db/knex.js';
import { requireUser } from '../middleware/auth.js';
import { savedToLibraryToApi } from '../serializers.js';
import { saveCommunityItem } from '../services/community-saves.js';
import { parseId } from './params.js';

/** Save to library: a community item copied into the caller's sessions. */
export function communitySaveRoutes(deps: { knex: Knex }): Router {
  const router = new Router();
  router.post('/api/community/sessions/:snapshotId/save', requireUser, async (ctx) => {
    const result = await saveCommunityItem(deps.knex, ctx.state.user!, parseId(ctx.params.snapshotId, 'snapshotId'));
    ctx.body = savedToLibraryToApi(result.sessionId, result.reused);
  });
  return router;
}
