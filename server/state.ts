import type { Logger } from '../logger.js';
import type { AccountRow } from '../db/types.js';

declare module 'koa' {
  interface DefaultState {
    requestId: string;
    log: Logger;
    user?: AccountRow;
    /** The login session's user as the login session store read it (see `loadUser`). */
    httpSessionUser?: AccountRow;
  }
  interface Request {
    /** Set by the `jsonBody` middleware; unknown until validated. */
    body?: unknown;
  }
}

export {};
