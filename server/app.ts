import Koa from 'koa';
import type { Config } from '../config.js';
import type { Knex } from '../db/knex.js';
import type { CommittedOutboxRow } from '../db/outbox.js';
import type { Logger } from '../logger.js';
import { ThumbnailUrlPolicy, type BlobStore, type JobProducer, type RedisClient } from '../workers/index.js';
import './state.js';
import { dashboard } from './dashboard.js';
import { httpSessionMiddleware } from './http-session-cookie.js';
import { createWebMetrics } from './metrics.js';
import { loadUser } from './middleware/auth.js';
import { errorHandler } from './middleware/error-handler.js';
import { apiRateLimit } from './middleware/rate-limit.js';
import { requestLog } from './middleware/request-log.js';
import { adminRoutes } from './routes/admin.js';
import { authRoutes } from './routes/auth.js';
import { communityRoutes } from './routes/community.js';
import { communitySaveRoutes } from './routes/community-saves.js';
import { healthRoutes } from './routes/health.js';
import { metaRoutes } from './routes/meta.js';
import { moderationRoutes } from './routes/moderation.js';
import { sessionRoutes } from './routes/sessions.js';
import { shareRoutes } from './routes/shares.js';
import { buildSchemas } from './schemas.js';
import { Validator } from './validation.js';

export interface AppDeps {
  config: Config;
  knex: Knex;
  logger: Logger;
  /** Receives the outbox rows each committed transaction wrote (the fast dispatch path). */
  afterCommit?: (committed: readonly CommittedOutboxRow[]) => void;
  /** The queues, for the dashboard, the admin API, readiness and metrics (absent: those report it). */
  queues?: JobProducer;
  /** Blob storage, for readiness. */
  blobs?: BlobStore;
  /** Redis for the API rate limit's counters, shared by the web processes (absent: each process counts alone). */
  rateLimitRedis?: RedisClient;
}

/** Builds the Koa application; `main.ts` (or a test) decides where it listens. */
export function createApp(deps: AppDeps): Koa {
  const { config, knex, logger } = deps;
  const app = new Koa({ proxy: config.trustProxy });
  const schemas = buildSchemas(config.captionThemes);
  const validator = new Validator();
  const afterCommit = deps.afterCommit ?? (() => undefined);
  const metrics = createWebMetrics({ knex, ...(deps.queues ? { queues: deps.queues } : {}) });

  app.use(requestLog(logger));
  app.use(metrics.middleware);
  app.use(errorHandler());
  app.use(httpSessionMiddleware(app, config, knex));
  app.use(loadUser(knex));
  // After loadUser: a logged-in caller is counted by user, anyone else by address.
  app.use(
    apiRateLimit({
      points: config.apiRateLimit.points,
      windowSeconds: config.apiRateLimit.windowSeconds,
      keyPrefix: `${config.queuePrefix}:api-rate`,
      ...(deps.rateLimitRedis ? { redis: deps.rateLimitRedis } : {}),
    }),
  );
  if (deps.queues) for (const m of dashboard(deps.queues, { readOnly: config.dashboardReadOnly })) app.use(m);

  const routers = [
    healthRoutes({ knex, metrics, ...(deps.queues ? { queues: deps.queues } : {}), ...(deps.blobs ? { blobs: deps.blobs } : {}) }),
    adminRoutes({ knex, afterCommit, ...(deps.queues ? { queues: deps.queues } : {}) }),
    ...moderationRoutes({ knex, validator, schemas, bodyLimitBytes: config.bodyLimitBytes, afterCommit, readOnly: config.dashboardReadOnly }),
    metaRoutes({ knex, schemas }),
    authRoutes({ knex, config, validator, schemas }),
    communityRoutes({ knex }),
    shareRoutes({ knex, publicBaseUrl: config.publicBaseUrl }),
    communitySaveRoutes({ knex }),
    sessionRoutes({
      knex,
      validator,
      schemas,
      bodyLimitBytes: config.bodyLimitBytes,
      defaultCaptionTheme: config.captionThemes[0]!,
      thumbnailUrls: ThumbnailUrlPolicy.forStorage(config.azureStorageConnectionString, config.blobContainers),
      afterCommit,
    }),
  ];
  for (const router of routers) {
    app.use(router.routes());
    app.use(router.allowedMethods({ throw: true }));
  }
  return app;
}
