import type { Logger } from '../logger.js';
import type { UserRow } from '../db/types.js';

declare module 'koa' {
  interface DefaultState {
    requestId: string;
    log: Logger;
    user?: UserRow;
    /** The session's user as the session store read it (see `loadUser`). */
    sessionUser?: UserRow;
  }
  interface Request {
    /** Set by the `jsonBody` middleware; unknown until validated. */
    body?: unknown;
  }
}

export {};
