import type { Middleware } from 'koa';
import { coerceError, type Logger } from '../../logger.js';
import { ApiError, serviceUnavailable, STATUS_CATEGORIES, type ErrorStatus } from '../errors.js';

// Connection-level failures (Postgres restarting, a terminated backend, a pool that cannot connect)
// and statements past their deadline (57014: `statement_timeout`; node-postgres's `query_timeout`):
// the request did not complete and may be retried, so they answer 503 rather than 500.
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57014', '57P01', '57P02', '57P03', '08000', '08003', '08006', '53300']);

function isUnavailable(err: Error & { code?: unknown }): boolean {
  if (typeof err.code === 'string' && UNAVAILABLE_CODES.has(err.code)) return true;
  // node-postgres reports a query on a client whose connection already failed (a terminated backend
  // is noticed by the idle client, then knex's COMMIT or ROLLBACK runs on it) without any code, and
  // so its deadlines: a statement's (`Query read timeout`) and a new connection's (`timeout expired`).
  return /Query read timeout|^timeout expired$|Connection terminated|Client has encountered a connection error|Client was closed and is not queryable|Knex: Timeout acquiring a connection|connection is closed/i.test(
    err.message,
  );
}

/** Turns whatever a handler threw into an ApiError. */
export function toApiError(thrown: unknown): { error: ApiError; internal: boolean; cause: Error } {
  const err = coerceError(thrown) as Error & { status?: unknown; expose?: unknown; code?: unknown };
  if (err instanceof ApiError) return { error: err, internal: false, cause: err };
  if (isUnavailable(err)) {
    return { error: serviceUnavailable('A backing service is temporarily unavailable; please retry'), internal: true, cause: err };
  }
  // Errors from Koa itself or its helpers (ctx.throw, http-errors) carry a status.
  const status = typeof err.status === 'number' ? err.status : 500;
  if (status >= 400 && status < 500) {
    const known: ErrorStatus = status in STATUS_CATEGORIES ? (status as ErrorStatus) : 400;
    return { error: new ApiError(known, err.expose ? err.message : STATUS_CATEGORIES[known].category), internal: false, cause: err };
  }
  return {
    error: new ApiError(500, 'Something went wrong on our side; it has been logged'),
    internal: true,
    cause: err,
  };
}

/** The one error path: every error becomes the envelope of docs/api.md §4 and one log line. */
export function errorHandler(): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new ApiError(404, `No route for ${ctx.method} ${ctx.path}`);
      }
    } catch (thrown) {
      const { error, internal, cause } = toApiError(thrown);
      const log = (ctx.state.log as Logger | undefined) ?? undefined;
      if (internal) log?.error({ err: cause, status: error.status }, 'request failed');
      else log?.info({ status: error.status, code: error.code, reason: error.message }, 'request rejected');
      ctx.status = error.status;
      if (error.headers) ctx.set(error.headers);
      ctx.body = {
        error: error.category,
        message: error.message,
        code: error.code,
        ...(error.details ? { details: error.details } : {}),
        ...error.extra,
      };
    }
  };
}
