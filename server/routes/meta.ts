import Router from '@koa/router';
import type { Knex } from '../../db/knex.js';
import { listCategories } from '../../db/categories.js';
import { categoryToApi } from '../serializers.js';
import type { Schemas } from '../schemas.js';
import { buildOpenApi } from '../openapi.js';

export function metaRoutes(deps: { knex: Knex; schemas: Schemas }): Router {
  const router = new Router();
  const openapi = buildOpenApi(deps.schemas);

  router.get('/api/openapi.json', (ctx) => {
    ctx.body = openapi;
  });
  router.get('/api/categories', async (ctx) => {
    ctx.body = (await listCategories(deps.knex)).map(categoryToApi);
  });
  return router;
}
