import type { Middleware } from 'koa';
import getRawBody from 'raw-body';
import { badRequest, payloadTooLarge, unsupportedMediaType, validationError } from '../errors.js';

/** U+0000, or a UTF-16 surrogate without its pair: neither is text Postgres can store. */
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The JSON pointer of the first string (a value or a key) Postgres cannot store as text, or null:
 * one holding U+0000 (the database would fail with a 500) or a lone surrogate (stored as U+FFFD, so
 * an email or title would silently become another). Iterative, because a body within the size
 * limit can still nest tens of thousands of levels deep.
 */
function unstorablePointer(root: unknown): string | null {
  const stack: [unknown, string][] = [[root, '']];
  while (stack.length > 0) {
    const [value, pointer] = stack.pop()!;
    if (typeof value === 'string') {
      if (UNSTORABLE.test(value)) return pointer;
    } else if (value !== null && typeof value === 'object') {
      for (const [key, child] of Object.entries(value)) {
        const at = `${pointer}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
        if (UNSTORABLE.test(key)) return at;
        stack.push([child, at]);
      }
    }
  }
  return null;
}

/**
 * A form post (`application/x-www-form-urlencoded`) as an object: each field a string, a field given
 * more than once an array of them (which a schema then refuses). Built with `Object.fromEntries`, so
 * a field named `__proto__` is a plain property, never the object's prototype.
 */
function parseForm(text: string): Record<string, string | string[]> {
  const fields = new Map<string, string | string[]>();
  for (const [key, value] of new URLSearchParams(text)) {
    const seen = fields.get(key);
    fields.set(key, seen === undefined ? value : [...[seen].flat(), value]);
  }
  return Object.fromEntries(fields);
}

/**
 * Reads a JSON request body into `ctx.request.body`: 415 for another content type, 413 past the
 * limit (checked while reading, so an oversized body is never buffered whole), 400 for malformed JSON.
 * A request without a body reads as `undefined`. With `form`, a form post is read too (the
 * reference's `POST /api/login`, which a browser `<form>` posts); every other route takes JSON only.
 */
export function jsonBody(limitBytes: number, options: { form?: boolean } = {}): Middleware {
  return async (ctx, next) => {
    const length = ctx.request.length;
    const hasBody = (length !== undefined && length > 0) || ctx.get('transfer-encoding') !== '';
    if (!hasBody) {
      ctx.request.body = undefined;
      return next();
    }
    const form = options.form === true && ctx.request.is('application/x-www-form-urlencoded') !== false;
    if (!form && !ctx.request.is('application/json', '+json')) {
      throw unsupportedMediaType(options.form ? 'Request body must be JSON or a form post (application/x-www-form-urlencoded)' : undefined);
    }
    // The rest of a refused body stays unread on the socket: close the connection after the 413, or a
    // keep-alive client would send its next request behind that body and have it reset.
    const tooLarge = (): Error => {
      ctx.set('Connection', 'close');
      return payloadTooLarge(limitBytes);
    };
    if (length !== undefined && length > limitBytes) throw tooLarge();
    let text: string;
    try {
      text = await getRawBody(ctx.req, { limit: limitBytes, encoding: 'utf8', length });
    } catch (e) {
      const err = e as { type?: string; status?: number };
      if (err.type === 'entity.too.large') throw tooLarge();
      if (err.type === 'encoding.unsupported') throw unsupportedMediaType('Request body must be UTF-8 JSON');
      throw badRequest('Request body could not be read');
    }
    if (text.trim() === '') {
      ctx.request.body = undefined;
      return next();
    }
    if (form) {
      const fields = parseForm(text);
      const bad = unstorablePointer(fields);
      if (bad !== null) throw validationError([{ field: bad.split('/').slice(1).join('.'), pointer: bad, reason: 'must be well-formed text: no NUL character and no unpaired surrogate' }]);
      ctx.request.body = fields;
      return next();
    }
    let body: unknown;
    try {
      body = JSON.parse(text) as unknown;
    } catch (e) {
      throw badRequest(`Malformed JSON in request body: ${(e as Error).message}`, 'INVALID_JSON');
    }
    // JSON text can carry U+0000 or a lone surrogate only as an escape (\u0000, \ud800…): bodies
    // without one skip the walk.
    const bad = /\\u(?:0000|[dD][89a-fA-F])/.test(text) ? unstorablePointer(body) : null;
    if (bad !== null) {
      throw validationError([
        { field: bad.split('/').slice(1).join('.'), pointer: bad, reason: 'must be well-formed text: no NUL character (\\u0000) and no unpaired surrogate' },
      ]);
    }
    ctx.request.body = body;
    return next();
  };
}
