import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { Knex } from '../../db/knex.js';
import { findSharedSession, findSharePreview } from '../../db/share-codes.js';
import { listSessionMedia } from '../../db/sessions.js';
import { findSnapshotBySession } from '../../db/snapshots.js';
import { notFound } from '../errors.js';
import { createRouter } from '../routing.js';
import { sessionDetailToApi, shareLinkToApi, sharePreviewToApi } from '../serializers.js';
import { shareSession, unshareSession } from '../services/shares.js';
import { parseId } from './params.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A share code from the path. A malformed one names no session, so it answers like an unknown one
 * (404), and never reaches Postgres's uuid parser (which would fail the query).
 */
function parseShareCode(value: string | undefined): string {
  if (value === undefined || !UUID.test(value)) throw notFound('Share link not found');
  return value.toLowerCase();
}

/** Share links (docs/api.md §6): a session's code, its revocation, and what the code shows. */
export function shareRoutes(deps: { knex: Knex; publicBaseUrl: string; rateLimit?: Middleware }): Router[] {
  const limit = deps.rateLimit ? { rateLimit: deps.rateLimit } : {};
  const router = createRouter({ access: 'user', ...limit });
  const open = createRouter({ access: 'public', ...limit });

  router.post('/api/sessions/:id/share', async (ctx) => {
    const code = await shareSession(deps.knex, ctx.state.user!, parseId(ctx.params.id, 'id'));
    ctx.body = shareLinkToApi(code, deps.publicBaseUrl);
  });

  router.delete('/api/sessions/:id/share', async (ctx) => {
    await unshareSession(deps.knex, ctx.state.user!, parseId(ctx.params.id, 'id'));
    ctx.status = 204;
  });

  // The one read open to anonymous callers: enough to decide whether to log in and open it.
  open.get('/api/shared/:code/preview', async (ctx) => {
    const preview = await findSharePreview(deps.knex, parseShareCode(ctx.params.code));
    if (!preview) throw notFound('Share link not found');
    ctx.body = sharePreviewToApi(preview);
  });

  router.get('/api/shared/:code', async (ctx) => {
    const session = await findSharedSession(deps.knex, parseShareCode(ctx.params.code));
    if (!session) throw notFound('Share link not found');
    const [media, snapshot] = await Promise.all([listSessionMedia(deps.knex, session.id), findSnapshotBySession(deps.knex, session.id)]);
    ctx.body = sessionDetailToApi(session, snapshot, media);
  });

  return [router, open];
}
