import { createHash } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

/**
 * The one way workers download something from a URL they did not choose (subreddit listings, media,
 * thumbnails). Bounded in size, time, redirects and content type, and refuses private, loopback and
 * link-local addresses so a hostile listing cannot make a worker reach internal services (SSRF).
 */

export interface SafeFetchOptions {
  /** `MEDIA_ALLOW_PRIVATE_HOSTS`: lets tests reach a server on 127.0.0.1. Never on in production. */
  allowPrivateHosts: boolean;
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
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** The limit's name in the too-large message (default `MEDIA_MAX_BYTES`). */
  maxBytesName?: string;
  /**
   * Exact origins (`http://127.0.0.1:4000`) exempt from the private-address rule, for tests and a
   * known internal mirror. A redirect away from such an origin is checked as usual.
   */
  trustedOrigins?: string[];
  /** Replaces `dns.lookup` (all addresses). For tests that need a name to resolve somewhere. */
  resolve?: (hostname: string) => Promise<LookupAddress[]>;
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
}

export type DownloadFailure =
  | 'bad_url'
  | 'private_address'
  | 'http_status'
  | 'too_large'
  | 'timeout'
  | 'content_type'
  | 'network'
  | 'too_many_redirects'
  | 'aborted'
  | 'bad_body';

const RETRYABLE: Record<DownloadFailure, boolean> = {
  bad_url: false,
  private_address: false,
  http_status: false,
  too_large: false,
  timeout: true,
  content_type: false,
  network: true,
  too_many_redirects: false,
  // Our own caller gave up (usually a worker shutting down); the job deserves another go.
  aborted: true,
  bad_body: false,
};

/** Statuses worth retrying: the server may answer differently later. */
function retryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** Why a download failed, whether a retry could help, and which URL it was. */
export class DownloadError extends Error {
  override name = 'DownloadError';
  readonly status?: number;
  readonly retryable: boolean;

  constructor(
    readonly reason: DownloadFailure,
    readonly url: string,
    message: string,
    options: { status?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (options.status !== undefined) this.status = options.status;
    this.retryable = reason === 'http_status' && options.status !== undefined ? retryableStatus(options.status) : RETRYABLE[reason];
  }
}

// ---------------------------------------------------------------------------------------------
// Address rules

function blockList(subnets: [string, number][], type: 'ipv4' | 'ipv6'): net.BlockList {
  const list = new net.BlockList();
  for (const [network, prefix] of subnets) list.addSubnet(network, prefix, type);
  return list;
}

/** Named so the refusal can say which kind of address it was. Order matters only for the label. */
const IPV4_RULES: [string, net.BlockList][] = [
  ['loopback', blockList([['127.0.0.0', 8]], 'ipv4')],
  ['private', blockList([['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16]], 'ipv4')],
  ['link-local (cloud metadata range)', blockList([['169.254.0.0', 16]], 'ipv4')],
  ['carrier-grade NAT', blockList([['100.64.0.0', 10]], 'ipv4')],
  ['"this network"', blockList([['0.0.0.0', 8]], 'ipv4')],
  ['multicast', blockList([['224.0.0.0', 4]], 'ipv4')],
  [
    'reserved',
    blockList(
      [
        ['192.0.0.0', 24],
        ['192.0.2.0', 24],
        ['192.88.99.0', 24],
        ['198.18.0.0', 15],
        ['198.51.100.0', 24],
        ['203.0.113.0', 24],
        ['240.0.0.0', 4],
      ],
      'ipv4',
    ),
  ],
];

const IPV6_RULES: [string, net.BlockList][] = [
  ['loopback', blockList([['::1', 128]], 'ipv6')],
  ['unspecified', blockList([['::', 128]], 'ipv6')],
  ['private (unique local)', blockList([['fc00::', 7]], 'ipv6')],
  ['link-local', blockList([['fe80::', 10], ['fec0::', 10]], 'ipv6')],
  ['multicast', blockList([['ff00::', 8]], 'ipv6')],
  [
    'reserved',
    blockList(
      [
        // IPv4-compatible (deprecated), discard-only, IETF protocol assignments (Teredo among them),
        // documentation, 6to4 and local-use NAT64: none is a public web server's address.
        ['::', 96],
        ['100::', 64],
        ['2001::', 23],
        ['2001:db8::', 32],
        ['2002::', 16],
        ['64:ff9b:1::', 48],
      ],
      'ipv6',
    ),
  ],
];

/** The 16 bytes of an IPv6 address (zone id already removed), or null when it does not parse. */
function ipv6Bytes(address: string): number[] | null {
  let text = address;
  const tail: number[] = [];
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    if (!net.isIPv4(dotted[2]!)) return null;
    tail.push(...dotted[2]!.split('.').map(Number));
    text = dotted[1]!.endsWith('::') ? dotted[1]! : dotted[1]!.slice(0, -1);
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const words = (part: string | undefined): number[] => (part ? part.split(':').map((w) => parseInt(w, 16)) : []);
  const head = words(halves[0]);
  const rest = words(halves[1]);
  const tailWords = tail.length ? [(tail[0]! << 8) | tail[1]!, (tail[2]! << 8) | tail[3]!] : [];
  const missing = 8 - head.length - rest.length - tailWords.length;
  if (halves.length === 1 ? missing !== 0 : missing < 0) return null;
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...rest, ...tailWords];
  if (all.some((w) => Number.isNaN(w) || w < 0 || w > 0xffff)) return null;
  return all.flatMap((w) => [w >> 8, w & 0xff]);
}

/** The IPv4 address an IPv6 address stands for (IPv4-mapped `::ffff:a.b.c.d` or NAT64 `64:ff9b::/96`). */
function embeddedIpv4(address: string): string | null {
  const bytes = ipv6Bytes(address);
  if (!bytes) return null;
  const zeros = (from: number, to: number): boolean => bytes.slice(from, to).every((b) => b === 0);
  const mapped = zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff;
  const nat64 = bytes[0] === 0x00 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && zeros(4, 12);
  return mapped || nat64 ? bytes.slice(12).join('.') : null;
}

/**
 * What kind of non-public address this is (`loopback`, `private`, `link-local …`), or null for a
 * public one. IPv4-mapped and NAT64 IPv6 forms are judged by the IPv4 address they carry.
 */
export function nonPublicAddressKind(address: string): string | null {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = net.isIP(bare);
  if (family === 4) return IPV4_RULES.find(([, list]) => list.check(bare, 'ipv4'))?.[0] ?? null;
  if (family !== 6) return 'not an IP address';
  const v4 = embeddedIpv4(bare);
  if (v4 !== null) {
    const kind = IPV4_RULES.find(([, list]) => list.check(v4, 'ipv4'))?.[0];
    return kind ? `${kind}, as IPv6 ${bare}` : null;
  }
  return IPV6_RULES.find(([, list]) => list.check(bare, 'ipv6'))?.[0] ?? null;
}

// ---------------------------------------------------------------------------------------------
// One request

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = 'showrunner-worker/0.1 (+media sync)';

interface Hop {
  url: URL;
  addresses: LookupAddress[];
}

type HopResult = { kind: 'redirect'; location: string } | { kind: 'done'; downloaded: Downloaded };

class ConnectTimeout extends Error {}

/** Request options with the checked addresses a pooled connection must have been made to. */
interface PinnedRequestOptions extends http.RequestOptions {
  pinnedAddresses: string;
}

/**
 * Keep-alive agents whose pool key includes the addresses the request was checked against: a
 * pooled connection is reused only by a request that resolved to the same checked addresses, so
 * connection reuse opens no DNS-rebinding gap. Idle connections are dropped after 4 s, before the
 * usual 5 s server keep-alive, so a reused one is rarely already closed by the other end.
 */
function pinnedAgent<T extends typeof http.Agent | typeof https.Agent>(Base: T): InstanceType<T> {
  const Pinned = class extends (Base as typeof http.Agent) {
    override getName(options: http.RequestOptions & Partial<PinnedRequestOptions>): string {
      return `${super.getName(options)}|${options.pinnedAddresses ?? ''}`;
    }
  };
  return new Pinned({ keepAlive: true, timeout: 4_000, scheduling: 'lifo' }) as InstanceType<T>;
}

const agents = { http: pinnedAgent(http.Agent), https: pinnedAgent(https.Agent) };

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
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

/** Resolves the host once and checks every address; the request then connects to exactly these. */
async function resolveHop(url: URL, options: SafeFetchOptions, signal: AbortSignal): Promise<Hop> {
  const host = hostOf(url);
  const literal = net.isIP(host);
  let addresses: LookupAddress[];
  if (literal) {
    addresses = [{ address: host, family: literal }];
  } else {
    const lookup = options.resolve ?? ((h: string) => dnsLookup(h, { all: true, verbatim: true }));
    try {
      addresses = await untilAborted(lookup(host), signal);
    } catch (e) {
      if (signal.aborted) throw e;
      const code = (e as NodeJS.ErrnoException).code ?? '';
      throw new DownloadError('network', url.href, `GET ${url.href} failed: cannot resolve ${host} (${code || (e as Error).message})`, { cause: e });
    }
    if (addresses.length === 0) throw new DownloadError('network', url.href, `GET ${url.href} failed: ${host} resolves to no address`);
  }
  const trusted = options.trustedOrigins?.includes(url.origin) ?? false;
  if (!options.allowPrivateHosts && !trusted) {
    // One bad address refuses the host: a name mixing public and private answers is not innocent.
    for (const { address } of addresses) {
      const kind = nonPublicAddressKind(address);
      if (kind) {
        throw new DownloadError('private_address', url.href, `${url.href} refused: resolves to a private address ${address} (${kind})`);
      }
    }
  }
  return { url, addresses };
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e: unknown) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}

function mediaType(header: string | undefined): string {
  const essence = header?.split(';')[0]?.trim().toLowerCase();
  return essence || 'application/octet-stream';
}

interface HopSettings {
  options: SafeFetchOptions;
  headers: Record<string, string>;
  signal: AbortSignal;
  connectTimeoutMs: number;
}

/** Sends one GET to the hop's checked addresses and reads the answer within the limits. */
async function fetchHop(hop: Hop, settings: HopSettings): Promise<HopResult> {
  const { url, addresses } = hop;
  const { options, signal } = settings;
  const first = addresses[0]!;
  // Node asks with `all: true` when it races IPv4 and IPv6 (autoSelectFamily); either way it only
  // ever gets the addresses checked above, so a second DNS answer cannot slip in (no rebinding gap).
  const lookup: net.LookupFunction = (_hostname, lookupOptions, callback) => {
    if (lookupOptions.all) callback(null, addresses);
    else callback(null, first.address, first.family);
  };
  const secure = url.protocol === 'https:';
  const client = secure ? https : http;
  const pinnedAddresses = addresses.map((a) => a.address).sort().join(',');

  const send = (pooled: boolean): Promise<http.IncomingMessage> =>
    new Promise<http.IncomingMessage>((resolve, reject) => {
      const agent = pooled ? (secure ? agents.https : agents.http) : false;
      const requestOptions: PinnedRequestOptions = { method: 'GET', headers: settings.headers, lookup, agent, signal, pinnedAddresses };
      const req = client.request(url, requestOptions);
      req.once('response', resolve);
      req.on('error', (e: NodeJS.ErrnoException) => {
        // A kept-alive connection the server closed just as we reused it: once more, on a new one.
        if (pooled && req.reusedSocket && !signal.aborted && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) resolve(send(false));
        else reject(e);
      });
      req.once('socket', (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => req.destroy(new ConnectTimeout()), settings.connectTimeoutMs);
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      req.end();
    });
  const res = await send(true);

  const status = res.statusCode ?? 0;
  const location = res.headers.location;
  if (REDIRECT_STATUSES.has(status) && location) {
    res.destroy();
    return { kind: 'redirect', location };
  }
  if (status < 200 || status > 299) {
    res.destroy();
    throw new DownloadError('http_status', url.href, `GET ${url.href} answered ${status}`, { status });
  }

  const contentType = mediaType(res.headers['content-type']);
  const encoding = res.headers['content-encoding']?.trim().toLowerCase();
  if (encoding && encoding !== 'identity') {
    res.destroy();
    throw new DownloadError('content_type', url.href, `GET ${url.href} answered with Content-Encoding ${encoding} although identity was asked for`);
  }
  if (options.accept && !options.accept(contentType)) {
    res.destroy();
    throw new DownloadError('content_type', url.href, `GET ${url.href} answered with content type ${contentType}, which is not accepted here`);
  }

  const limitName = options.maxBytesName ?? 'MEDIA_MAX_BYTES';
  const tooLarge = (detail: string): DownloadError =>
    new DownloadError('too_large', url.href, `GET ${url.href}: body exceeds ${limitName} (${options.maxBytes} bytes); ${detail}`);
  const declared = res.headers['content-length'] === undefined ? undefined : Number(res.headers['content-length']);
  if (declared !== undefined && declared > options.maxBytes) {
    res.destroy();
    throw tooLarge(`Content-Length says ${declared}`);
  }

  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > options.maxBytes) {
      // Stop reading at once: a hostile server must not make us buffer an unbounded body.
      res.destroy();
      throw tooLarge(`aborted after ${bytes} bytes`);
    }
    hash.update(chunk);
    chunks.push(chunk);
  }
  return { kind: 'done', downloaded: { url: url.href, contentType, bytes, body: Buffer.concat(chunks, bytes), sha256: hash.digest('hex') } };
}

function networkMessage(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code && !err.message.includes(err.code) ? `${err.code} ${err.message}` : err.message;
}

// ---------------------------------------------------------------------------------------------
// Public API

/**
 * Downloads `url` into memory within `options`' limits. Throws {@link DownloadError} whose `reason`
 * and `retryable` tell the job what happened and whether another attempt could succeed.
 */
export async function safeDownload(url: string, options: SafeFetchOptions): Promise<Downloaded> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxRedirects = options.maxRedirects ?? 5;
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error(`timed out after ${timeoutMs} ms`));
  }, timeoutMs);
  const onCallerAbort = (): void => controller.abort(options.signal?.reason);
  if (options.signal?.aborted) onCallerAbort();
  else options.signal?.addEventListener('abort', onCallerAbort, { once: true });

  let current = url;
  let origin: string | null = null;
  try {
    let previous: string | null = null;
    for (let redirects = 0; ; redirects++) {
      const target = parseTarget(current, previous);
      current = target.href;
      const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...lowerKeys(options.headers ?? {}) };
      if (origin !== null && origin !== target.origin) {
        // Credentials meant for the first host must not follow a redirect to another one.
        delete headers.authorization;
        delete headers.cookie;
      }
      // We store bytes as served; a compressed body would need a second, unbounded size check.
      headers['accept-encoding'] = 'identity';
      origin ??= target.origin;
      const hop = await resolveHop(target, options, controller.signal);
      const result = await fetchHop(hop, { options, headers, signal: controller.signal, connectTimeoutMs: options.connectTimeoutMs ?? 10_000 });
      if (result.kind === 'done') return result.downloaded;
      if (redirects >= maxRedirects) {
        throw new DownloadError('too_many_redirects', current, `GET ${url} redirected more than ${maxRedirects} times (last: ${current})`);
      }
      previous = current;
      current = result.location;
    }
  } catch (e) {
    if (timedOut) {
      throw new DownloadError('timeout', current, `GET ${current} did not finish within ${timeoutMs} ms`, { cause: e });
    }
    if (options.signal?.aborted) throw new DownloadError('aborted', current, `GET ${current} aborted by the caller`, { cause: e });
    if (e instanceof DownloadError) throw e;
    if (e instanceof ConnectTimeout) {
      throw new DownloadError('timeout', current, `GET ${current}: no connection within ${options.connectTimeoutMs ?? 10_000} ms`);
    }
    throw new DownloadError('network', current, `GET ${current} failed: ${networkMessage(e)}`, { cause: e });
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onCallerAbort);
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
