import type Router from '@koa/router';
import type { Knex } from '../../db/knex.js';
import { listCategories } from '../../db/categories.js';
import { categoryToApi } from '../serializers.js';
import type { JsonSchema } from '../validation.js';
import { createRouter } from '../routing.js';

/** `/api/openapi.json` and `/api/categories`, open to anyone. `openapi` is built on first request, from the finished route table. */
export function metaRoutes(deps: { knex: Knex; openapi: () => JsonSchema }): Router {
  const router = createRouter({ access: 'public' });
  let openapi: JsonSchema | undefined;

  router.get('/api/openapi.json', (ctx) => {
    openapi ??= deps.openapi();
    ctx.body = openapi;
  });
  router.get('/api/categories', async (ctx) => {
    ctx.body = (await listCategories(deps.knex)).map(categoryToApi);
  });
  return router;
}
