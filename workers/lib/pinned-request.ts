import type { LookupAddress } from 'node:dns';
import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { nonPublicAddressKind } from './address-policy.js';
import { DownloadError } from './download-error.js';

/**
 * One GET to addresses checked beforehand: the host is resolved once, every address is held to the
 * address policy, and the connection is made to exactly those addresses (a pinned lookup, and
 * keep-alive pools keyed by them), so no DNS answer given after the check can be reached.
 */

/** Which addresses a download may reach. */
export interface AddressOptions {
  /** `MEDIA_ALLOW_PRIVATE_HOSTS`: lets tests reach a server on 127.0.0.1. Never on in production. */
  allowPrivateHosts: boolean;
  /**
   * Exact origins (`http://127.0.0.1:4000`) exempt from the private-address rule, for tests and a
   * known internal mirror. A redirect away from such an origin is checked as usual.
   */
  trustedOrigins?: string[];
  /** Replaces `dns.lookup` (all addresses). For tests that need a name to resolve somewhere. */
  resolve?: (hostname: string) => Promise<LookupAddress[]>;
}

/** A URL with the checked addresses its request must connect to. */
export interface Hop {
  url: URL;
  addresses: LookupAddress[];
}

/** The connection attempt took longer than its own bound. */
export class ConnectTimeout extends Error {}

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

/** Resolves the host once and checks every address; the request then connects to exactly these. */
export async function resolveHop(url: URL, options: AddressOptions, signal: AbortSignal): Promise<Hop> {
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

/** What one request is sent with. */
export interface RequestSettings {
  headers: Record<string, string>;
  signal: AbortSignal;
  connectTimeoutMs: number;
}

/**
 * Node asks with `all: true` when it races IPv4 and IPv6 (autoSelectFamily); either way it only
 * ever gets the addresses checked in {@link resolveHop}, so a second DNS answer cannot slip in
 * between the check and the connection (no rebinding gap).
 */
function pinnedLookup(addresses: LookupAddress[]): net.LookupFunction {
  const first = addresses[0]!;
  return (_hostname, lookupOptions, callback) => {
    if (lookupOptions.all) callback(null, addresses);
    else callback(null, first.address, first.family);
  };
}

/** Bounds the connection attempt alone, so a black-holed address fails well before the whole deadline. */
function limitConnectTime(req: http.ClientRequest, connectTimeoutMs: number): void {
  req.once('socket', (socket) => {
    // A pooled socket is already connected: nothing to bound.
    if (!socket.connecting) return;
    const timer = setTimeout(() => req.destroy(new ConnectTimeout()), connectTimeoutMs);
    socket.once('connect', () => clearTimeout(timer));
    socket.once('close', () => clearTimeout(timer));
  });
}

/** Sends one GET to the hop's checked addresses and resolves with the response head. */
export function sendRequest(hop: Hop, settings: RequestSettings, pooled = true): Promise<http.IncomingMessage> {
  const { url, addresses } = hop;
  const { signal } = settings;
  const secure = url.protocol === 'https:';
  return new Promise<http.IncomingMessage>((resolve, reject) => {
    const requestOptions: PinnedRequestOptions = {
      method: 'GET',
      headers: settings.headers,
      lookup: pinnedLookup(addresses),
      agent: pooled ? (secure ? agents.https : agents.http) : false,
      signal,
      pinnedAddresses: addresses.map((a) => a.address).sort().join(','),
    };
    const req = (secure ? https : http).request(url, requestOptions);
    let answered = false;
    req.once('response', (res) => ((answered = true), resolve(res)));
    req.on('error', (e: NodeJS.ErrnoException) => {
      // A kept-alive connection the server closed just as we reused it: once more, on a new one.
      // Only before an answer: an error in the body is the caller's to see, not a reason to send again.
      const staleSocket = pooled && req.reusedSocket && !answered && !signal.aborted;
      if (staleSocket && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) resolve(sendRequest(hop, settings, false));
      else reject(e);
    });
    limitConnectTime(req, settings.connectTimeoutMs);
    req.end();
  });
}
