/**
 * Where alert webhooks may go (docs/alert.md "Credentials and SSRF": webhook and Slack URLs are credentials, checked against
 * SSRF). A target is refused unless:
 * - it is https (http only when a test configuration allows loopback, and then only to loopback);
 * - it has no user:password part;
 * - for Slack, its host is hooks.slack.com or on the configured allow-list;
 * - every address its host resolves to is public: not private, loopback, link-local, unspecified,
 *   multicast, reserved or documentation space, also when wrapped in IPv6 (mapped, NAT64, 6to4).
 * The check runs when a contact is saved and again before every delivery, and the delivery connects to
 * an address this check accepted (no second DNS answer can slip in a private one).
 */

export type AddressClass =
  'public' | 'private' | 'loopback' | 'link-local' | 'unspecified' | 'multicast' | 'reserved' | 'invalid';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** DNS resolution of a host name (all addresses); injected so tests can answer anything. */
export type HostResolver = (hostname: string) => Promise<ResolvedAddress[]>;

export interface TargetPolicy {
  channel: 'slack' | 'webhook';
  /** Hosts a Slack contact may point at (exact, lower case). */
  slackAllowedHosts: readonly string[];
  /** Test configurations only: allow http and loopback addresses (never other private space). */
  allowLoopbackHttp: boolean;
}

export class TargetRefusedError extends Error {
  readonly code = 'TARGET_REFUSED';
}

export interface CheckedTarget {
  url: URL;
  /** The host without IPv6 brackets. */
  host: string;
  /** The addresses to connect to: every one of them passed the check. */
  addresses: ResolvedAddress[];
}

/** Checks everything about a target URL that needs no DNS. The message never contains the URL's path. */
function checkTargetUrl(raw: string, policy: TargetPolicy): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TargetRefusedError(`${policy.channel} URL refused: not a valid URL`);
  }
  const host = bareHost(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowLoopbackHttp)) {
    throw new TargetRefusedError(`${policy.channel} URL refused: only https is allowed (got ${url.protocol})`);
  }
  if (url.username || url.password) {
    throw new TargetRefusedError(`${policy.channel} URL refused: credentials in the URL are not allowed`);
  }
  if (!host) throw new TargetRefusedError(`${policy.channel} URL refused: no host`);
  if (policy.channel === 'slack' && !policy.slackAllowedHosts.includes(host.toLowerCase().replace(/\.$/, ''))) {
    throw new TargetRefusedError(
      `slack URL refused: host ${host} is not an allowed Slack host (${policy.slackAllowedHosts.join(', ')})`,
    );
  }
  return url;
}

/** The full check: URL rules, then every resolved address. */
export async function checkTarget(raw: string, policy: TargetPolicy, resolve: HostResolver): Promise<CheckedTarget> {
  const url = checkTargetUrl(raw, policy);
  const host = bareHost(url.hostname);
  const literal = ipFamily(host);
  let addresses: ResolvedAddress[];
  if (literal) {
    addresses = [{ address: host, family: literal }];
  } else {
    try {
      addresses = await resolve(host);
    } catch (error) {
      throw new TargetRefusedError(
        `${policy.channel} URL refused: host ${host} does not resolve (${(error as { code?: string }).code ?? 'error'})`,
      );
    }
  }
  if (addresses.length === 0)
    throw new TargetRefusedError(`${policy.channel} URL refused: host ${host} has no address`);
  for (const { address } of addresses) {
    const kind = classifyAddress(address);
    if (kind === 'public' && url.protocol === 'https:') continue;
    if (kind === 'loopback' && policy.allowLoopbackHttp) continue;
    if (kind === 'public') {
      throw new TargetRefusedError(`${policy.channel} URL refused: only https is allowed to ${host}`);
    }
    const article = /^[aeiou]/.test(kind) ? 'an' : 'a';
    throw new TargetRefusedError(
      `${policy.channel} URL refused: ${host} resolves to ${address}, ${article} ${kind} address`,
    );
  }
  return { url, host, addresses };
}

function bareHost(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

/** 4 or 6 when the text is an IP address literal, else null. */
function ipFamily(text: string): 4 | 6 | null {
  if (parseIpv4(text) !== null) return 4;
  if (parseIpv6(text) !== null) return 6;
  return null;
}

export function classifyAddress(text: string): AddressClass {
  const v4 = parseIpv4(text);
  if (v4 !== null) return classifyIpv4(v4);
  const v6 = parseIpv6(text);
  if (v6 !== null) return classifyIpv6(v6);
  return 'invalid';
}

/** A dotted quad to a 32-bit number (strict: four decimal parts 0..255, no leading zeros). */
function parseIpv4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    value = value * 256 + n;
  }
  return value;
}

const V4_RANGES: ReadonlyArray<[string, number, AddressClass]> = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'private'], // carrier-grade NAT
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'], // includes cloud metadata 169.254.169.254
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'reserved'], // documentation
  ['192.88.99.0', 24, 'reserved'], // 6to4 relay anycast
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved'], // benchmarking
  ['198.51.100.0', 24, 'reserved'],
  ['203.0.113.0', 24, 'reserved'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'], // includes the broadcast address
];

const V4_PARSED = V4_RANGES.map(([base, bits, kind]) => ({ base: parseIpv4(base)!, bits, kind }));

function classifyIpv4(value: number): AddressClass {
  for (const range of V4_PARSED) {
    const size = 2 ** (32 - range.bits);
    if (value >= range.base && value < range.base + size) return range.kind;
  }
  return 'public';
}

/** An IPv6 address to its 8 hextets (handles "::" and an embedded dotted quad); null when not IPv6. */
function parseIpv6(text: string): number[] | null {
  const address = text.split('%')[0]!; // zone id
  if (!address.includes(':')) return null;
  let head = address;
  const tail: number[] = [];
  const lastColon = address.lastIndexOf(':');
  const last = address.slice(lastColon + 1);
  if (last.includes('.')) {
    const v4 = parseIpv4(last);
    if (v4 === null) return null;
    tail.push(Math.floor(v4 / 65536), v4 % 65536);
    head = address.slice(0, lastColon + 1); // keeps a trailing "::", drops a single trailing ":"
    if (!head.endsWith('::')) head = head.slice(0, -1);
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string): number[] | null => {
    if (part === '') return [];
    const groups = part.split(':');
    const out: number[] = [];
    for (const group of groups) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return null;
      out.push(parseInt(group, 16));
    }
    return out;
  };
  const left = parse(halves[0]!);
  const right = halves.length === 2 ? parse(halves[1]!) : [];
  if (left === null || right === null) return null;
  const known = left.length + right.length + tail.length;
  if (halves.length === 1) {
    if (known !== 8) return null;
    return [...left, ...tail];
  }
  if (known > 7) return null;
  return [...left, ...new Array<number>(8 - known).fill(0), ...right, ...tail];
}

function classifyIpv6(h: number[]): AddressClass {
  const [a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, hh = 0] = h;
  const embedded = (high: number, low: number) => classifyIpv4(high * 65536 + low);
  if (h.every((x) => x === 0)) return 'unspecified';
  if (a === 0 && b === 0 && c === 0 && d === 0 && e === 0 && f === 0 && g === 0 && hh === 1) return 'loopback';
  if (a === 0 && b === 0 && c === 0 && d === 0 && e === 0 && f === 0xffff) return embedded(g, hh); // mapped
  if (a === 0 && b === 0 && c === 0 && d === 0 && e === 0 && f === 0) return 'reserved'; // IPv4-compatible
  if (a === 0x64 && b === 0xff9b && c === 0 && d === 0 && e === 0 && f === 0) return embedded(g, hh); // NAT64
  if (a === 0x64 && b === 0xff9b && c === 1) return 'private'; // local-use NAT64
  if (a === 0x100 && b === 0 && c === 0 && d === 0) return 'reserved'; // discard
  if (a === 0x2001 && b === 0xdb8) return 'reserved'; // documentation
  if (a === 0x2001 && b < 0x200) return 'reserved'; // IETF protocol assignments, Teredo
  if (a === 0x2002) return embedded(b, c); // 6to4
  if ((a & 0xfe00) === 0xfc00) return 'private'; // unique local
  if ((a & 0xffc0) === 0xfe80) return 'link-local';
  if ((a & 0xffc0) === 0xfec0) return 'private'; // site-local (deprecated)
  if ((a & 0xff00) === 0xff00) return 'multicast';
  return 'public';
}
