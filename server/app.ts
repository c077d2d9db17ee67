import Koa from 'koa';
import type { Config } from '../config.js';
import type { Knex } from '../db/knex.js';
import type { Logger } from '../logger.js';
import './state.js';
import { loadUser } from './middleware/auth.js';
import { errorHandler } from './middleware/error-handler.js';
import { requestLog } from './middleware/request-log.js';
import { authRoutes } from './routes/auth.js';
import { communityRoutes } from './routes/community.js';
import { metaRoutes } from './routes/meta.js';
import { sessionRoutes } from './routes/sessions.js';
import { buildSchemas } from './schemas.js';
import { sessionMiddleware } from './session-cookie.js';
import { Validator } from './validation.js';

export interface AppDeps {
  config: Config;
  knex: Knex;
  logger: Logger;
  /** Receives the outbox rows each committed transaction wrote (the fast dispatch path). */
  afterCommit?: (outboxIds: number[]) => void;
}

/** Builds the Koa application; `main.ts` (or a test) decides where it listens. */
export function createApp(deps: AppDeps): Koa {
  const { config, knex, logger } = deps;
  const app = new Koa({ proxy: config.trustProxy });
  const schemas = buildSchemas(config.captionThemes);
  const validator = new Validator();
  const afterCommit = deps.afterCommit ?? (() => undefined);

  app.use(requestLog(logger));
  app.use(errorHandler());
  app.use(sessionMiddleware(app, config, knex));
  app.use(loadUser(knex));

  const routers = [
    metaRoutes({ knex, schemas }),
    authRoutes({ knex, config, validator, schemas }),
    communityRoutes({ knex }),
    sessionRoutes({
      knex,
      validator,
      schemas,
      bodyLimitBytes: config.bodyLimitBytes,
      defaultCaptionTheme: config.captionThemes[0]!,
      afterCommit,
    }),
  ];
  for (const router of routers) {
    app.use(router.routes());
    app.use(router.allowedMethods({ throw: true }));
  }
  return app;
}
