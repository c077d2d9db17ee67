/** A failing field: its JSON pointer into the request and the reason. */
export interface FieldError {
  field: string;
  pointer: string;
  reason: string;
}

/**
 * The typed errors handlers throw; one middleware turns them into the reference API's envelope
 * `{error, message, code, details}` (docs/api.md §4).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly category: string,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
    /** Extra top-level body fields some reference responses carry (e.g. `retryAfter` on 429). */
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function validationError(fields: FieldError[], message?: string): ApiError {
  const text = message ?? fields.map((f) => (f.field ? `${f.field} ${f.reason}` : f.reason)).join('; ');
  return new ApiError(400, 'VALIDATION_ERROR', 'Validation Error', text, { fields });
}

export function fieldError(field: string, reason: string): ApiError {
  return validationError([{ field, pointer: field ? `/${field}` : '', reason }]);
}

export const badRequest = (message: string, code = 'BAD_REQUEST'): ApiError =>
  new ApiError(400, code, 'Bad Request', message);
export const unauthorized = (message = 'Authentication required'): ApiError =>
  new ApiError(401, 'UNAUTHORIZED', 'Unauthorized', message);
export const forbidden = (message = 'You do not have permission to do this'): ApiError =>
  new ApiError(403, 'FORBIDDEN', 'Forbidden', message);
export const notFound = (message: string): ApiError => new ApiError(404, 'NOT_FOUND', 'Not Found', message);
export const conflict = (message: string, code = 'CONFLICT'): ApiError => new ApiError(409, code, 'Conflict', message);
export const preconditionFailed = (message: string): ApiError =>
  new ApiError(412, 'PRECONDITION_FAILED', 'Precondition Failed', message);
export const payloadTooLarge = (limit: number): ApiError =>
  new ApiError(413, 'PAYLOAD_TOO_LARGE', 'Payload Too Large', `Request body is larger than the limit of ${limit} bytes`);
export const unsupportedMediaType = (message = 'Request body must be JSON (Content-Type: application/json)'): ApiError =>
  new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Unsupported Media Type', message);
export const serviceUnavailable = (message: string): ApiError =>
  new ApiError(503, 'SERVICE_UNAVAILABLE', 'Service Unavailable', message, undefined, { 'Retry-After': '1' });
