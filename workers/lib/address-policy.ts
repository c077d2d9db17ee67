import net from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Which IP addresses a worker may connect to when it downloads from a URL it did not choose. A
 * hostile listing could otherwise point a worker at the cloud metadata service, a database on the
 * private network or the worker's own loopback services (SSRF). Only public unicast addresses pass:
 *
 * - IPv4: everything ipaddr.js names other than `unicast` is refused: `0.0.0.0/8`, loopback,
 *   RFC 1918 private, link-local (`169.254/16`, where cloud metadata lives), carrier-grade NAT
 *   (`100.64/10`), multicast, broadcast, and the reserved, documentation, benchmarking (`198.18/15`),
 *   6to4-relay, AS112 and AMT ranges.
 * - IPv6: an address carrying an IPv4 address the network would actually reach, IPv4-mapped
 *   (`::ffff:127.0.0.1`) or NAT64 well-known prefix (`64:ff9b::/96`), is judged by that IPv4
 *   address, since connecting to it reaches the IPv4 host. Everything else must be global unicast:
 *   inside `2000::/3`, where every public allocation lies (so the IPv4-compatible `::/96`,
 *   deprecated site-local `fec0::/10`, discard `100::/64` and local-use NAT64 `64:ff9b:1::/48` are
 *   refused without a table of their own), and not one of ipaddr.js's special ranges there, nor
 *   the `3fff::/20` documentation prefix (RFC 9637), which ipaddr.js 2.2.0 predates.
 *   6to4 (`2002::/16`) and Teredo (`2001::/32`) are refused outright rather than judged by the
 *   IPv4 address they embed: a media server has no reason to be reached through such a tunnel,
 *   and the relay that would carry the traffic is not ours to trust.
 */

/** Words for the refusal message; other special ranges are `reserved (<ipaddr.js name>)`. */
const IPV4_LABELS: Partial<Record<string, string>> = {
  unspecified: '"this network"',
  loopback: 'loopback',
  private: 'private',
  linkLocal: 'link-local (cloud metadata range)',
  carrierGradeNat: 'carrier-grade NAT',
  multicast: 'multicast',
  broadcast: 'broadcast',
};

const IPV6_LABELS: Partial<Record<string, string>> = {
  unspecified: 'unspecified',
  loopback: 'loopback',
  uniqueLocal: 'private (unique local)',
  linkLocal: 'link-local',
  multicast: 'multicast',
};

const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3');
const DOCUMENTATION_V6 = ipaddr.IPv6.parseCIDR('3fff::/20');

function label(range: string, labels: Partial<Record<string, string>>): string {
  return labels[range] ?? (range === 'reserved' ? 'reserved' : `reserved (${range})`);
}

/** The IPv4 address behind an IPv4-mapped or NAT64 (well-known prefix) IPv6 address, else null. */
function embeddedIpv4(address: ipaddr.IPv6): ipaddr.IPv4 | null {
  const range = address.range();
  if (range !== 'ipv4Mapped' && range !== 'rfc6052') return null;
  return new ipaddr.IPv4(address.toByteArray().slice(12));
}

/** Why an IPv6 address without an embedded IPv4 one is not public, or null when it is. */
function nonPublicIpv6Kind(address: ipaddr.IPv6): string | null {
  const range = address.range();
  if (range !== 'unicast') return label(range, IPV6_LABELS);
  if (address.match(DOCUMENTATION_V6)) return 'reserved (documentation)';
  if (!address.match(GLOBAL_UNICAST_V6)) return 'reserved (outside global unicast 2000::/3)';
  return null;
}

function nonPublicIpv4Kind(address: ipaddr.IPv4): string | null {
  const range = address.range();
  return range === 'unicast' ? null : label(range, IPV4_LABELS);
}

/**
 * `::a.b.c.d` with its dotted tail written as two hex words. ipaddr.js reads the deprecated
 * IPv4-compatible form `::a.b.c.d` as the IPv4-mapped `::ffff:a.b.c.d`, so `::8.8.8.8` would pass
 * as 8.8.8.8 while the socket connects to `::808:808`; in hex it parses as what the socket reaches.
 */
function hexTail(ipv6: string): string {
  const dotted = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ipv6);
  if (!dotted) return ipv6;
  const [a, b, c, d] = dotted.slice(2).map(Number) as [number, number, number, number];
  return `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
}

/**
 * What kind of non-public address `address` is (`loopback`, `private`, `link-local …`, `reserved
 * (…)`), or null for a public one that a worker may connect to. Accepts the textual forms DNS and
 * URLs give (`[::1]`, `fe80::1%eth0`); anything that is not a plain IP address is refused, so a
 * form the socket layer would read differently from us never passes. IPv4-mapped and NAT64 IPv6
 * forms are judged by the IPv4 address they carry (`loopback, as IPv6 ::ffff:127.0.0.1`).
 */
export function nonPublicAddressKind(address: string): string | null {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  // net.isIP first: ipaddr.js also parses shorthand like `2130706433` or `0x7f.1`, which no
  // resolver hands us and which must not be judged as one address and connected to as another.
  const family = net.isIP(bare);
  if (family === 0) return 'not an IP address';
  if (family === 4) return nonPublicIpv4Kind(ipaddr.IPv4.parse(bare));
  const v6 = ipaddr.IPv6.parse(hexTail(bare));
  const v4 = embeddedIpv4(v6);
  if (v4 === null) return nonPublicIpv6Kind(v6);
  const kind = nonPublicIpv4Kind(v4);
  return kind === null ? null : `${kind}, as IPv6 ${bare}`;
}
