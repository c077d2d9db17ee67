import type { Logger } from '../logger.js';
import type { UserRow } from '../db/types.js';

declare module 'koa' {
  interface DefaultState {
    requestId: string;
    log: Logger;
    user?: UserRow;
    /** The login session's user as the login session store read it (see `loadUser`). */
    httpSessionUser?: UserRow;
  }
  interface Request {
    /** Set by the `jsonBody` middleware; unknown until validated. */
    body?: unknown;
  }
}

export {};
