/** A failing field: its JSON pointer into the request and the reason. */
export interface FieldError {
  field: string;
  pointer: string;
  reason: string;
}

/**
 * Each status the API answers with an error: the envelope's `error` category and its default machine
 * `code`. The one table: the typed errors below and the error middleware (for statuses thrown by Koa
 * or its helpers) both read it.
 */
export const STATUS_CATEGORIES = {
  400: { category: 'Bad Request', code: 'BAD_REQUEST' },
  401: { category: 'Unauthorized', code: 'UNAUTHORIZED' },
  403: { category: 'Forbidden', code: 'FORBIDDEN' },
  404: { category: 'Not Found', code: 'NOT_FOUND' },
  405: { category: 'Method Not Allowed', code: 'METHOD_NOT_ALLOWED' },
  409: { category: 'Conflict', code: 'CONFLICT' },
  412: { category: 'Precondition Failed', code: 'PRECONDITION_FAILED' },
  413: { category: 'Payload Too Large', code: 'PAYLOAD_TOO_LARGE' },
  415: { category: 'Unsupported Media Type', code: 'UNSUPPORTED_MEDIA_TYPE' },
  429: { category: 'Too Many Requests', code: 'RATE_LIMITED' },
  500: { category: 'Internal Server Error', code: 'INTERNAL_ERROR' },
  501: { category: 'Not Implemented', code: 'NOT_IMPLEMENTED' },
  503: { category: 'Service Unavailable', code: 'SERVICE_UNAVAILABLE' },
} as const;

export type ErrorStatus = keyof typeof STATUS_CATEGORIES;

export interface ApiErrorOptions {
  /** The machine code; the status's default code when absent. */
  code?: string;
  /** The envelope's `error`; the status's category when absent (validation errors say "Validation Error"). */
  category?: string;
  details?: Record<string, unknown>;
  headers?: Record<string, string>;
  /** Extra top-level body fields some reference responses carry (e.g. `retryAfter` on 429). */
  extra?: Record<string, unknown>;
}

/**
 * The typed errors handlers throw; one middleware turns them into the reference API's envelope
 * `{error, message, code, details}` (docs/api.md §4).
 */
export class ApiError extends Error {
  readonly code: string;
  readonly category: string;
  readonly details: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;
  readonly extra: Record<string, unknown> | undefined;

  constructor(
    readonly status: ErrorStatus,
    message: string,
    options: ApiErrorOptions = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.code = options.code ?? STATUS_CATEGORIES[status].code;
    this.category = options.category ?? STATUS_CATEGORIES[status].category;
    this.details = options.details;
    this.headers = options.headers;
    this.extra = options.extra;
  }
}

export function validationError(fields: FieldError[], message?: string): ApiError {
  const text = message ?? fields.map((f) => (f.field ? `${f.field} ${f.reason}` : f.reason)).join('; ');
  return new ApiError(400, text, { code: 'VALIDATION_ERROR', category: 'Validation Error', details: { fields } });
}

export function fieldError(field: string, reason: string): ApiError {
  return validationError([{ field, pointer: field ? `/${field}` : '', reason }]);
}

export const badRequest = (message: string, code = 'BAD_REQUEST'): ApiError => new ApiError(400, message, { code });
export const unauthorized = (message = 'Authentication required'): ApiError => new ApiError(401, message);
export const forbidden = (message = 'You do not have permission to do this', code = 'FORBIDDEN'): ApiError => new ApiError(403, message, { code });
export const notFound = (message: string): ApiError => new ApiError(404, message);
export const conflict = (message: string, code = 'CONFLICT'): ApiError => new ApiError(409, message, { code });
export const preconditionFailed = (message: string): ApiError => new ApiError(412, message);
export const payloadTooLarge = (limit: number): ApiError => new ApiError(413, `Request body is larger than the limit of ${limit} bytes`);
export const unsupportedMediaType = (message = 'Request body must be JSON (Content-Type: application/json)'): ApiError => new ApiError(415, message);
export const serviceUnavailable = (message: string): ApiError => new ApiError(503, message, { headers: { 'Retry-After': '1' } });

/**
 * 429 as the reference answers it: `Retry-After` (whole seconds, at least 1) and the same number as
 * `retryAfter` in the body; `what` completes "Too many …".
 */
export function tooManyRequests(what: string, msBeforeNext: number, code = 'RATE_LIMITED'): ApiError {
  const retryAfter = Math.max(1, Math.ceil(msBeforeNext / 1000));
  return new ApiError(429, `Too many ${what}; try again in ${retryAfter} seconds`, {
    code,
    headers: { 'Retry-After': String(retryAfter) },
    extra: { retryAfter },
  });
}
