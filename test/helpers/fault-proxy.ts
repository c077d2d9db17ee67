import net from 'node:net';

/**
 * What the proxy does to the traffic, as Toxiproxy's toxics do:
 * - `pass`: bytes flow both ways unchanged;
 * - `latency`: each chunk, either way, is delivered `ms` later (order kept);
 * - `silent`: the connections open now are frozen for good (bytes are taken and dropped, nothing
 *   comes back, no FIN, no reset: a peer that vanished), and new ones are accepted but held, with
 *   nothing forwarded until the proxy passes again;
 * - `reset`: every open connection is reset (RST), and so is each new one.
 */
export type FaultMode = { kind: 'pass' } | { kind: 'latency'; ms: number } | { kind: 'silent' } | { kind: 'reset' };

/** A TCP proxy in front of one dependency, whose mode a test switches while clients use it. */
export interface FaultProxy {
  host: string;
  port: number;
  mode(): FaultMode;
  pass(): void;
  latency(ms: number): void;
  silent(): void;
  reset(): void;
  /**
   * Client connections: `frozen` by a silence and still held by their client, `abandoned` (frozen,
   * and closed by their client since), `held` until the next pass, `live` the rest.
   */
  connections(): { live: number; frozen: number; abandoned: number; held: number };
  close(): Promise<void>;
}

interface Link {
  client: net.Socket;
  upstream?: net.Socket;
  state: 'live' | 'frozen' | 'held';
  /** What a held client sent, forwarded once it is connected. */
  pending: Buffer[];
  clientClosed: boolean;
}

/** Starts a proxy on a free loopback port that forwards to `target`, in `pass` mode. */
export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  let mode: FaultMode = { kind: 'pass' };
  const links = new Set<Link>();

  const destroy = (link: Link, reset: boolean): void => {
    links.delete(link);
    for (const socket of [link.client, link.upstream]) {
      if (!socket || socket.destroyed) continue;
      if (reset) socket.resetAndDestroy();
      else socket.destroy();
    }
  };

  /** Writes to `to` now, or after the configured latency: a timer per chunk keeps their order. */
  const forward = (link: Link, to: net.Socket, chunk: Buffer): void => {
    if (link.state !== 'live') return;
    if (mode.kind === 'latency') {
      setTimeout(() => link.state === 'live' && !to.destroyed && to.write(chunk), mode.ms);
    } else if (!to.destroyed) {
      to.write(chunk);
    }
  };

  const connect = (link: Link): void => {
    const upstream = net.connect(target);
    link.upstream = upstream;
    link.state = 'live';
    upstream.on('data', (chunk: Buffer) => forward(link, link.client, chunk));
    // The dependency closing (or failing) closes the client's side too, unless the link is frozen.
    upstream.on('error', () => link.state === 'live' && destroy(link, true));
    upstream.on('close', () => link.state === 'live' && destroy(link, false));
    for (const chunk of link.pending.splice(0)) forward(link, upstream, chunk);
    if (link.clientClosed) destroy(link, false);
  };

  const server = net.createServer((client) => {
    const link: Link = { client, state: 'held', pending: [], clientClosed: false };
    links.add(link);
    client.on('error', () => undefined);
    client.on('data', (chunk: Buffer) => {
      if (link.state === 'held') link.pending.push(chunk);
      else if (link.upstream) forward(link, link.upstream, chunk);
    });
    client.on('close', () => {
      link.clientClosed = true;
      // A frozen link's far side hears nothing until the network heals (see `pass`).
      if (link.state !== 'frozen') destroy(link, false);
    });
    if (mode.kind === 'reset') destroy(link, true);
    else if (mode.kind !== 'silent') connect(link);
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;

  return {
    host: '127.0.0.1',
    port,
    mode: () => mode,
    pass() {
      mode = { kind: 'pass' };
      for (const link of [...links]) {
        if (link.state === 'held') connect(link);
        // A healed network delivers the client's close (or the client's host answers with a reset)
        // to the far side of a frozen connection; one the client still holds stays frozen for good.
        else if (link.state === 'frozen' && link.clientClosed) {
          link.state = 'live';
          destroy(link, true);
        }
      }
    },
    latency(ms) {
      mode = { kind: 'latency', ms };
    },
    silent() {
      mode = { kind: 'silent' };
      for (const link of links) if (link.state === 'live') link.state = 'frozen';
    },
    reset() {
      mode = { kind: 'reset' };
      for (const link of [...links]) destroy(link, true);
    },
    connections() {
      const count = { live: 0, frozen: 0, abandoned: 0, held: 0 };
      for (const link of links) count[link.state === 'frozen' && link.clientClosed ? 'abandoned' : link.state] += 1;
      return count;
    },
    async close() {
      for (const link of [...links]) destroy(link, true);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
