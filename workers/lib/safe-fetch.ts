import { createHash } from 'node:crypto';
import type http from 'node:http';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { nonPublicAddressKind } from './address-policy.js';
import { DownloadError } from './download-error.js';
import { ConnectTimeout, resolveHop, sendRequest, type AddressOptions, type Hop, type RequestSettings } from './pinned-request.js';

/**
 * The one way workers download something from a URL they did not choose (subreddit listings, media,
 * thumbnails). Bounded in size, time, redirects and content type, and refuses private, loopback and
 * link-local addresses so a hostile listing cannot make a worker reach internal services (SSRF).
 */

/** A download's bounds, and (from {@link AddressOptions}) which addresses it may reach. */
export interface SafeFetchOptions extends AddressOptions {
  /** `MEDIA_MAX_BYTES`: enforced on Content-Length and again while the body streams in. */
  maxBytes: number;
  /** Whole download, redirects included (default 30000). */
  timeoutMs?: number;
  /** Per connection attempt (default 10000). */
  connectTimeoutMs?: number;
  /** Default 5; every target is checked again (scheme and address). */
  maxRedirects?: number;
  /** Decides on the media type (lowercase, without parameters); default: any. */
  accept?: (contentType: string) => boolean;
  /** Ends the download with reason `aborted` (retryable), e.g. when the worker shuts down. */
  signal?: AbortSignal;
  /** Extra request headers; `authorization`, `proxy-authorization` and `cookie` are dropped after a redirect to another origin. */
  headers?: Record<string, string>;
  /** The limit's name in the too-large message (default `MEDIA_MAX_BYTES`). */
  maxBytesName?: string;
}

export interface Downloaded {
  /** The final URL, after redirects. */
  url: string;
  /** Media type from Content-Type, lowercase, without parameters (`application/octet-stream` when absent). */
  contentType: string;
  bytes: number;
  body: Buffer;
  /** Hex SHA-256 of the body. */
  sha256: string;
  /**
   * The response's ETag when it is a strong one (`"…"`, not `W/"…"`): only a strong ETag promises
   * the same bytes, which is what {@link safeRevalidateTo} relies on. Null otherwise.
   */
  etag: string | null;
  /** How long the source says these bytes stay current without asking it again ({@link freshForSeconds}). */
  freshForSeconds: number;
}

/** What {@link safeRevalidateTo} answers when the source still has the bytes of the ETag it was given (a 304). */
export interface NotModified {
  notModified: true;
  /** As {@link Downloaded.freshForSeconds}, from the 304 (which updates it). */
  freshForSeconds: number;
}

/** What {@link safeDownloadTo} wrote to its sink: a {@link Downloaded} without the body. */
export type StreamedDownload = Omit<Downloaded, 'body'>;

export { DownloadError, type DownloadFailure } from './download-error.js';

/** The address policy every hop is checked against, exported here too for safe-fetch's importers. */
export { nonPublicAddressKind };

// ---------------------------------------------------------------------------------------------
// One hop (the request itself, pinned to its checked addresses, is pinned-request.ts)

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = 'showrunner-worker/0.1 (+media sync)';

type HopResult<T> = { kind: 'redirect'; location: string } | { kind: 'done'; body: T } | { kind: 'not-modified'; freshForSeconds: number };

/**
 * Reads a response whose head passed the checks. The in-memory and the streaming download differ
 * only here; both must stop at `maxBytes` whatever the server declared.
 */
type BodyReader<T> = (res: http.IncomingMessage, url: URL, contentType: string, options: SafeFetchOptions) => Promise<T>;

/** The header's value when it is a strong entity tag (RFC 9110 §8.8.3), else null. */
function strongEtag(header: string | undefined): string | null {
  return header !== undefined && /^"[\x21\x23-\x7e\x80-\xff]*"$/.test(header) ? header : null;
}

/**
 * How many more seconds a response may be reused without asking its source (RFC 9111 §4.2): its
 * `Cache-Control: max-age` less its `Age`; 0 with `no-cache` or `no-store`, or when it does not say
 * (no heuristic freshness: a source that does not promise anything is asked every time).
 */
function freshForSeconds(headers: http.IncomingHttpHeaders): number {
  const directives = (headers['cache-control'] ?? '').toLowerCase().split(',').map((d) => d.trim());
  if (directives.some((d) => d === 'no-store' || d === 'no-cache' || d.startsWith('no-cache='))) return 0;
  const maxAge = directives.map((d) => /^max-age="?(\d+)"?$/.exec(d)?.[1]).find((v) => v !== undefined);
  const age = Number(/^\d+$/.exec(String(headers.age ?? ''))?.[0] ?? 0);
  return maxAge === undefined ? 0 : Math.max(0, Math.min(Number(maxAge), 2 ** 31) - age);
}

function parseTarget(raw: string, from: string | null): URL {
  let url: URL;
  try {
    url = from === null ? new URL(raw) : new URL(raw, from);
  } catch {
    throw new DownloadError('bad_url', raw, from === null ? `"${raw}" is not a valid URL` : `${from} redirected to "${raw}", which is not a valid URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    const message =
      from === null ? `${url.href} refused: only http and https URLs are fetched` : `${from} redirected to ${url.href}, refused: only http and https URLs are fetched`;
    throw new DownloadError('bad_url', url.href, message);
  }
  return url;
}

function mediaType(header: string | undefined): string {
  const essence = header?.split(';')[0]?.trim().toLowerCase();
  return essence || 'application/octet-stream';
}

interface HopSettings extends RequestSettings {
  options: SafeFetchOptions;
  /** The request carries `If-None-Match`: a 304 then means "unchanged", not a failure. */
  conditional: boolean;
}

function tooLarge(url: URL, options: SafeFetchOptions, detail: string): DownloadError {
  const limitName = options.maxBytesName ?? 'MEDIA_MAX_BYTES';
  return new DownloadError('too_large', url.href, `GET ${url.href}: body exceeds ${limitName} (${options.maxBytes} bytes); ${detail}`);
}

/**
 * Refuses a response head that cannot give an acceptable body (status, encoding, type, declared
 * size) before any of the body is read; returns the body's media type otherwise.
 */
function checkResponseHead(res: http.IncomingMessage, url: URL, options: SafeFetchOptions): string {
  const status = res.statusCode ?? 0;
  if (status < 200 || status > 299) {
    throw new DownloadError('http_status', url.href, `GET ${url.href} answered ${status}`, { status });
  }
  const encoding = res.headers['content-encoding']?.trim().toLowerCase();
  if (encoding && encoding !== 'identity') {
    throw new DownloadError('content_type', url.href, `GET ${url.href} answered with Content-Encoding ${encoding} although identity was asked for`);
  }
  const contentType = mediaType(res.headers['content-type']);
  if (options.accept && !options.accept(contentType)) {
    throw new DownloadError('content_type', url.href, `GET ${url.href} answered with content type ${contentType}, which is not accepted here`);
  }
  const declared = res.headers['content-length'] === undefined ? undefined : Number(res.headers['content-length']);
  if (declared !== undefined && declared > options.maxBytes) throw tooLarge(url, options, `Content-Length says ${declared}`);
  return contentType;
}

/** Counts and hashes the body's chunks as they pass, failing once it exceeds `maxBytes`. */
function bodyMeter(url: URL, options: SafeFetchOptions): { take: (chunk: Buffer) => void; bytes: () => number; sha256: () => string } {
  const hash = createHash('sha256');
  let bytes = 0;
  return {
    take: (chunk) => {
      bytes += chunk.length;
      // Stop reading at once (the caller destroys the response): a hostile server must not make us
      // take an unbounded body.
      if (bytes > options.maxBytes) throw tooLarge(url, options, `aborted after ${bytes} bytes`);
      hash.update(chunk);
    },
    bytes: () => bytes,
    sha256: () => hash.digest('hex'),
  };
}

/** Reads and hashes the body, never holding more than `maxBytes` whatever the server declared. */
async function readBody(res: http.IncomingMessage, url: URL, contentType: string, options: SafeFetchOptions): Promise<Downloaded> {
  const meter = bodyMeter(url, options);
  const chunks: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) {
    meter.take(chunk);
    chunks.push(chunk);
  }
  const bytes = meter.bytes();
  return { url: url.href, contentType, bytes, body: Buffer.concat(chunks, bytes), sha256: meter.sha256(), etag: strongEtag(res.headers.etag), freshForSeconds: freshForSeconds(res.headers) };
}

/**
 * Streams the body into the sink `open` makes (called once the head passed the checks, so a refused
 * response opens nothing), hashing it on the way, with backpressure: memory holds a few chunks, not
 * the body. On failure the sink is destroyed; what it holds is the caller's to discard.
 */
function streamBody(open: () => Writable): BodyReader<StreamedDownload> {
  return async (res, url, contentType, options) => {
    const meter = bodyMeter(url, options);
    await pipeline(
      res,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          meter.take(chunk);
          yield chunk;
        }
      },
      open(),
    );
    return { url: url.href, contentType, bytes: meter.bytes(), sha256: meter.sha256(), etag: strongEtag(res.headers.etag), freshForSeconds: freshForSeconds(res.headers) };
  };
}

/** One request to the hop's checked addresses: a redirect to follow, or a body read within the limits. */
async function fetchHop<T>(hop: Hop, settings: HopSettings, read: BodyReader<T>): Promise<HopResult<T>> {
  const res = await sendRequest(hop, settings);
  try {
    const location = res.headers.location;
    if (REDIRECT_STATUSES.has(res.statusCode ?? 0) && location) {
      res.destroy();
      return { kind: 'redirect', location };
    }
    if (res.statusCode === 304 && settings.conditional) {
      // A 304 has no body; reading its end keeps the connection for the next request.
      res.resume();
      return { kind: 'not-modified', freshForSeconds: freshForSeconds(res.headers) };
    }
    const contentType = checkResponseHead(res, hop.url, settings.options);
    return { kind: 'done', body: await read(res, hop.url, contentType, settings.options) };
  } catch (e) {
    // Whatever went wrong, the connection goes: its unread rest must not be reused or buffered.
    res.destroy();
    throw e;
  }
}

function networkMessage(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code && !err.message.includes(err.code) ? `${err.code} ${err.message}` : err.message;
}

/** The request headers for one hop. */
function hopHeaders(callerHeaders: Record<string, string> | undefined, sameOriginAsFirst: boolean): Record<string, string> {
  const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...lowerKeys(callerHeaders ?? {}) };
  if (!sameOriginAsFirst) {
    // Credentials meant for the first host must not follow a redirect to another one.
    delete headers.authorization;
    delete headers['proxy-authorization'];
    delete headers.cookie;
  }
  // We store bytes as served; a compressed body would need a second, unbounded size check.
  headers['accept-encoding'] = 'identity';
  return headers;
}

/** One abort signal for the whole download: it fires at the deadline or when the caller's signal does. */
function downloadDeadline(timeoutMs: number, callerSignal: AbortSignal | undefined): { signal: AbortSignal; timedOut: () => boolean; dispose: () => void } {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`timed out after ${timeoutMs} ms`));
  }, timeoutMs);
  const onCallerAbort = (): void => controller.abort(callerSignal?.reason);
  if (callerSignal?.aborted) onCallerAbort();
  else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    dispose: () => {
      clearTimeout(timer);
      callerSignal?.removeEventListener('abort', onCallerAbort);
    },
  };
}

interface DownloadLimits {
  timeoutMs: number;
  connectTimeoutMs: number;
  maxRedirects: number;
}

/**
 * What ended a download, as the DownloadError its caller sees. The deadline and the caller's abort
 * come first: whatever error they caused underneath (a reset socket, an aborted lookup) is only
 * their symptom.
 */
function asDownloadError(e: unknown, url: string, limits: DownloadLimits, timedOut: boolean, callerAborted: boolean): DownloadError {
  if (timedOut) return new DownloadError('timeout', url, `GET ${url} did not finish within ${limits.timeoutMs} ms`, { cause: e });
  if (callerAborted) return new DownloadError('aborted', url, `GET ${url} aborted by the caller`, { cause: e });
  if (e instanceof DownloadError) return e;
  if (e instanceof ConnectTimeout) return new DownloadError('timeout', url, `GET ${url}: no connection within ${limits.connectTimeoutMs} ms`);
  return new DownloadError('network', url, `GET ${url} failed: ${networkMessage(e)}`, { cause: e });
}

// ---------------------------------------------------------------------------------------------
// Public API

/**
 * Downloads `url` into memory within `options`' limits. Throws {@link DownloadError} whose `reason`
 * and `retryable` tell the job what happened and whether another attempt could succeed.
 */
export function safeDownload(url: string, options: SafeFetchOptions): Promise<Downloaded> {
  return download(url, options, readBody, null);
}

/**
 * {@link safeDownload} into a stream instead of memory (same checks, limits and errors): the body
 * goes to the sink `open` makes once a response is accepted, hashed on the way; resolves when the
 * sink has finished. After a failure the sink may hold part of a body: the caller discards it.
 */
export function safeDownloadTo(url: string, options: SafeFetchOptions, open: () => Writable): Promise<StreamedDownload> {
  return download(url, options, streamBody(open), null);
}

/**
 * {@link safeDownloadTo}, asking the source whether it still has the bytes it served with the strong
 * ETag `etag` (`If-None-Match`): {@link NotModified} when it answers 304, without a body; else the
 * body, streamed into the sink, as from safeDownloadTo. Only the URL itself is asked: after a
 * redirect the tag is not sent (it belongs to the first URL), so a redirected source is downloaded.
 */
export function safeRevalidateTo(url: string, etag: string, options: SafeFetchOptions, open: () => Writable): Promise<StreamedDownload | NotModified> {
  return download(url, options, streamBody(open), etag);
}

/**
 * Follows redirects within the limits, checking every hop, and reads the accepted body with `read`;
 * with `ifNoneMatch`, the first hop asks for the body only if it changed.
 */
function download<T>(url: string, options: SafeFetchOptions, read: BodyReader<T>, ifNoneMatch: null): Promise<T>;
function download<T>(url: string, options: SafeFetchOptions, read: BodyReader<T>, ifNoneMatch: string): Promise<T | NotModified>;
async function download<T>(url: string, options: SafeFetchOptions, read: BodyReader<T>, ifNoneMatch: string | null): Promise<T | NotModified> {
  const limits: DownloadLimits = {
    timeoutMs: options.timeoutMs ?? 30_000,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    maxRedirects: options.maxRedirects ?? 5,
  };
  const deadline = downloadDeadline(limits.timeoutMs, options.signal);
  const { signal } = deadline;
  let current = url;
  try {
    let previous: string | null = null;
    let origin: string | null = null;
    for (let redirects = 0; ; redirects++) {
      // Every hop, the first included, is parsed, resolved and checked anew.
      const target = parseTarget(current, previous);
      current = target.href;
      origin ??= target.origin;
      const headers = hopHeaders(options.headers, origin === target.origin);
      const conditional = ifNoneMatch !== null && redirects === 0;
      if (conditional) headers['if-none-match'] = ifNoneMatch;
      const hop = await resolveHop(target, options, signal);
      const result = await fetchHop(hop, { options, headers, signal, connectTimeoutMs: limits.connectTimeoutMs, conditional }, read);
      if (result.kind === 'done') return result.body;
      if (result.kind === 'not-modified') return { notModified: true, freshForSeconds: result.freshForSeconds };
      if (redirects >= limits.maxRedirects) {
        throw new DownloadError('too_many_redirects', current, `GET ${url} redirected more than ${limits.maxRedirects} times (last: ${current})`);
      }
      previous = current;
      current = result.location;
    }
  } catch (e) {
    throw asDownloadError(e, current, limits, deadline.timedOut(), options.signal?.aborted ?? false);
  } finally {
    deadline.dispose();
  }
}

function lowerKeys(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}

/** `application/json` and the `+json` family (`application/problem+json`, …). */
export function isJsonType(contentType: string): boolean {
  return /^application\/([\w.-]+\+)?json$/i.test(contentType);
}

/**
 * Downloads and parses a JSON document (accepting JSON media types unless `options.accept` says
 * otherwise). A body that is not JSON fails with reason `bad_body`, not retryable.
 */
export async function safeFetchJson<T = unknown>(url: string, options: SafeFetchOptions): Promise<T> {
  const downloaded = await safeDownload(url, {
    ...options,
    accept: options.accept ?? isJsonType,
    headers: { accept: 'application/json', ...options.headers },
  });
  try {
    return JSON.parse(downloaded.body.toString('utf8').replace(/^\uFEFF/, '')) as T;
  } catch (e) {
    throw new DownloadError('bad_body', downloaded.url, `GET ${downloaded.url} answered with invalid JSON: ${(e as Error).message}`, { cause: e });
  }
}
