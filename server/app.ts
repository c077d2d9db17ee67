import Koa from 'koa';
import type { Config } from '../config.js';
import type { Knex } from '../db/knex.js';
import type { WrittenOutboxJob } from '../db/outbox.js';
import type { Logger } from '../logger.js';
import { ThumbnailUrlPolicy, type BlobStore, type JobProducer, type RedisClient } from '../workers/index.js';
import './state.js';
import { AuthLimits } from './auth-limits.js';
import { dashboard } from './dashboard.js';
import { httpSessionMiddleware } from './http-session-cookie.js';
import { createWebMetrics, type WebMetrics } from './metrics.js';
import { loadUser } from './middleware/auth.js';
import { canonicalPaths } from './middleware/canonical-path.js';
import { errorHandler } from './middleware/error-handler.js';
import { prefixGuards, refuseCrossSiteWrites } from './middleware/guards.js';
import { apiRateLimit } from './middleware/rate-limit.js';
import { requestLog } from './middleware/request-log.js';
import { securityHeaders } from './middleware/security-headers.js';
import { buildOpenApi } from './openapi.js';
import { adminRoutes } from './routes/admin.js';
import { adminPageRoutes } from './routes/admin-pages.js';
import { authRoutes } from './routes/auth.js';
import { communityRoutes } from './routes/community.js';
import { communitySaveRoutes } from './routes/community-saves.js';
import { healthRoutes } from './routes/health.js';
import { metaRoutes } from './routes/meta.js';
import { moderationRoutes } from './routes/moderation.js';
import { sessionRoutes } from './routes/sessions.js';
import { shareRoutes } from './routes/shares.js';
import { mountRouters, routeTable, type RouteInfo } from './routing.js';
import { buildSchemas } from './schemas.js';
import { Validator } from './validation.js';

export interface AppDeps {
  config: Config;
  knex: Knex;
  logger: Logger;
  /** Receives the outbox rows each committed transaction wrote (the fast dispatch path). */
  afterCommit?: (committed: readonly WrittenOutboxJob[]) => void;
  /** The queues, for the dashboard, the admin API, readiness and metrics (absent: those report it). */
  queues?: JobProducer;
  /** Blob storage, for readiness. */
  blobs?: BlobStore;
  /** Redis for the API rate limit's counters, shared by the web processes (absent: each process counts alone). */
  rateLimitRedis?: RedisClient;
  /** The process's metrics, which `main.ts` serves on `METRICS_PORT` (absent: the app makes its own). */
  metrics?: WebMetrics;
}

/**
 * Builds the Koa application; `main.ts` (or a test) decides where it listens. The order of the
 * middleware is the security model of docs/security.md: headers on every answer; the canonical-path
 * gate before anything routes; the login; cross-site writes and the admin prefixes refused before
 * any router; then routers made by `createRouter`, each route with its rate limit and access guard.
 */
export function createApp(deps: AppDeps): Koa {
  const { config, knex, logger } = deps;
  const app = new Koa({ proxy: config.trustProxy > 0, maxIpsCount: config.trustProxy });
  const schemas = buildSchemas(config.captionThemes);
  const validator = new Validator();
  const afterCommit = deps.afterCommit ?? (() => undefined);
  const metrics = deps.metrics ?? createWebMetrics({ knex, ...(deps.queues ? { queues: deps.queues } : {}) });
  const hsts = config.nodeEnv === 'production' && config.publicBaseUrl.startsWith('https:');

  app.use(securityHeaders({ hsts }));
  app.use(requestLog(logger));
  app.use(metrics.middleware);
  app.use(errorHandler());
  app.use(canonicalPaths);
  app.use(httpSessionMiddleware(app, config, knex));
  app.use(loadUser(knex));
  app.use(refuseCrossSiteWrites(config.publicBaseUrl));
  app.use(prefixGuards);

  const board = deps.queues ? dashboard(deps.queues, { readOnly: config.dashboardReadOnly }) : undefined;
  if (board) app.use(board.middleware);

  // By user when logged in, else by address: it runs after loadUser, on the routes of the limited routers.
  const rateLimit = apiRateLimit({
    points: config.apiRateLimit.points,
    windowSeconds: config.apiRateLimit.windowSeconds,
    keyPrefix: `${config.queuePrefix}:api-rate`,
    ...(deps.rateLimitRedis ? { redis: deps.rateLimitRedis } : {}),
  });
  const limited = rateLimit ? { rateLimit } : {};
  const body = { validator, schemas, bodyLimitBytes: config.bodyLimitBytes };

  mountRouters(
    app,
    [
      healthRoutes({ knex, ...(deps.queues ? { queues: deps.queues } : {}), ...(deps.blobs ? { blobs: deps.blobs } : {}) }),
      adminRoutes({ knex, afterCommit, ...(deps.queues ? { queues: deps.queues } : {}) }),
      moderationRoutes({ knex, ...body, afterCommit }),
      ...adminPageRoutes({ knex, readOnly: config.dashboardReadOnly }),
      metaRoutes({ knex, openapi: () => buildOpenApi(schemas, routeTable(app)) }),
      ...authRoutes({ knex, config, validator, schemas, limits: new AuthLimits(knex, config) }),
      communityRoutes({ knex, ...limited }),
      ...shareRoutes({ knex, publicBaseUrl: config.publicBaseUrl, ...limited }),
      communitySaveRoutes({ knex, ...limited }),
      sessionRoutes({
        knex,
        ...body,
        defaultCaptionTheme: config.captionThemes[0]!,
        thumbnailUrls: ThumbnailUrlPolicy.forStorage(config.azureStorageConnectionString, config.blobContainers),
        afterCommit,
        ...limited,
      }),
    ],
    board?.routes ?? ([] as RouteInfo[]),
  );
  return app;
}
