import type { Middleware } from 'koa';
import getRawBody from 'raw-body';
import { ApiError, badRequest, payloadTooLarge, unsupportedMediaType } from '../errors.js';

/**
 * Reads a JSON request body into `ctx.request.body`: 415 for another content type, 413 past the
 * limit (checked while reading, so an oversized body is never buffered whole), 400 for malformed JSON.
 * A request without a body reads as `undefined`.
 */
export function jsonBody(limitBytes: number): Middleware {
  return async (ctx, next) => {
    const length = ctx.request.length;
    const hasBody = (length !== undefined && length > 0) || ctx.get('transfer-encoding') !== '';
    if (!hasBody) {
      ctx.request.body = undefined;
      return next();
    }
    if (!ctx.request.is('application/json', '+json')) throw unsupportedMediaType();
    if (length !== undefined && length > limitBytes) throw payloadTooLarge(limitBytes);
    let text: string;
    try {
      text = await getRawBody(ctx.req, { limit: limitBytes, encoding: 'utf8', length });
    } catch (e) {
      const err = e as { type?: string; status?: number };
      if (err.type === 'entity.too.large') throw payloadTooLarge(limitBytes);
      if (err.type === 'encoding.unsupported') throw unsupportedMediaType('Request body must be UTF-8 JSON');
      throw new ApiError(400, 'BAD_REQUEST', 'Bad Request', 'Request body could not be read');
    }
    if (text.trim() === '') {
      ctx.request.body = undefined;
      return next();
    }
    try {
      ctx.request.body = JSON.parse(text) as unknown;
    } catch (e) {
      throw badRequest(`Malformed JSON in request body: ${(e as Error).message}`, 'INVALID_JSON');
    }
    return next();
  };
}
