import net from 'node:net';
import { normalizeDomain, type DomainResult } from '../onionmap/domain.js';
import { DEFAULT_CLIENT_PORT, HTTPS_PORT, type EntryStatus, type MapEntry } from '../onionmap/entry.js';
import { validateOnion } from '../onionmap/onion-address.js';
import type { OnionMap } from '../onionmap/onion-map.js';
import { refusal, type Refusal } from './refusals.js';

/**
 * Where a connection may go, for both doors: the connect-server door routes the stream's `to`
 * by the onion map; the SOCKS door routes its CONNECT destination the same way, chooses the
 * policy by port, and then checks the stream's `to` against that destination. Pure: no I/O,
 * and no name is ever resolved here.
 */

export interface Route {
  readonly kind: 'onion' | 'clearnet';
  /** Passed to Tor as a SOCKS5 host name (or an address literal from a user map); never resolved here. */
  readonly host: string;
  readonly port: number;
}

export type RouteReason = 'mapped-onion' | 'onion-domain' | 'mapped-clearnet' | 'unmapped-clearnet';

export type RouteDecision =
  | {
      readonly ok: true;
      readonly route: Route;
      readonly reason: RouteReason;
      /** `<starttls/>` with the stream header, both with Tor's BEGIN (off by flag, or for an entry that says so). */
      readonly pipelining: boolean;
      readonly status?: EntryStatus;
      readonly note?: string;
    }
  | { readonly ok: false; readonly refusal: Refusal };

export interface RouteOptions {
  readonly onionOnly: boolean;
  /** Pipelining unless false (`--no-pipelining`); an entry may still turn it off for its server. */
  readonly pipelining?: boolean;
}

export const DEFAULT_DIRECT_TLS_PORT = 5223;

/** Where a connection for `domain` (already normalised) goes. */
export function decideRoute(map: OnionMap, domain: string, options: RouteOptions): RouteDecision {
  if (domain.endsWith('.onion')) {
    const onion = validateOnion(domain);
    if (!onion.ok) return { ok: false, refusal: refusal('route-bad-onion', { problem: onion.problem }) };
    const retired = retiredOnion(map, onion.onion);
    if (retired) return retired;
    return { ok: true, route: { kind: 'onion', host: onion.onion, port: DEFAULT_CLIENT_PORT }, reason: 'onion-domain', pipelining: options.pipelining !== false };
  }
  const entry = map.get(domain);
  if (!entry) {
    if (options.onionOnly) return { ok: false, refusal: refusal('route-onion-only', { domain }) };
    return { ok: true, route: { kind: 'clearnet', host: domain, port: DEFAULT_CLIENT_PORT }, reason: 'unmapped-clearnet', pipelining: options.pipelining !== false };
  }
  const pipelining = options.pipelining !== false && entry.pipelining !== false;
  const note = entry.note;
  const known = { status: entry.status, ...(note ? { note } : {}) };
  if (entry.status === 'retired') return retired(entry);
  if ((entry.status === 'active' || entry.status === 'unverified') && entry.onion) {
    return { ok: true, route: { kind: 'onion', host: entry.onion, port: entry.port }, reason: 'mapped-onion', pipelining, ...known };
  }
  if (options.onionOnly) return { ok: false, refusal: refusal('route-onion-only', { domain, ...(note ? { why: note } : {}) }) };
  return { ok: true, route: { kind: 'clearnet', host: entry.host ?? domain, port: entry.port }, reason: 'mapped-clearnet', pipelining, ...known };
}

/** A retired service's last onion is kept in the map for reference and never dialled, however it is named. */
function retiredOnion(map: OnionMap, onion: string): { readonly ok: false; readonly refusal: Refusal } | undefined {
  const entry = map.byOnion(onion);
  if (entry?.status !== 'retired') return undefined;
  return retired(entry);
}

/** The refusal for a retired service, in its entry's words. */
function retired(entry: MapEntry): { readonly ok: false; readonly refusal: Refusal } {
  return { ok: false, refusal: refusal('route-retired', { domain: entry.domain, ...(entry.note ? { note: entry.note } : {}) }) };
}

/**
 * What the SOCKS door does with a CONNECT: the STARTTLS policy; TLS from the first byte, for
 * XMPP (XEP-0368) or HTTPS (upload, host-meta); or plain passing.
 */
export type SocksMode = 'starttls' | 'direct-tls' | 'https' | 'passthrough';

interface SocksRoute {
  readonly ok: true;
  readonly route: Route;
  /** The destination, normalised: what circuits are isolated by. */
  readonly destination: string;
}

export type SocksDecision =
  | (SocksRoute & {
      readonly mode: 'starttls';
      /** Whether the stream's `to` may be served by this destination. */
      readonly acceptTo: (domain: string) => RouteDecision;
    })
  | (SocksRoute & { readonly mode: Exclude<SocksMode, 'starttls'> })
  | { readonly ok: false; readonly refusal: Refusal };

export interface SocksPolicyOptions extends RouteOptions {
  readonly allowOtherPorts: boolean;
}

/**
 * Routes a SOCKS CONNECT by its destination: a mapped domain to its onion, a `.onion` as given,
 * any other name through a Tor exit; the port selects the policy.
 */
export function decideSocksRequest(map: OnionMap, host: string, port: number, options: SocksPolicyOptions): SocksDecision {
  const asked = askedHost(host);
  const https = httpsRequest(map, asked, port, options);
  if (https) return https;
  const target = socksDestination(map, asked, options);
  if (!target.ok) return target;
  const entry = target.domain ? map.get(target.domain) : undefined;
  let mode: SocksMode;
  let routePort: number;
  if (port === DEFAULT_CLIENT_PORT || port === entry?.port) {
    mode = 'starttls';
    routePort = target.route.port;
  } else if (port === DEFAULT_DIRECT_TLS_PORT || port === entry?.directTlsPort) {
    mode = 'direct-tls';
    routePort = entry?.directTlsPort ?? port;
  } else if (options.allowOtherPorts) {
    mode = 'passthrough';
    routePort = port;
  } else {
    return { ok: false, refusal: refusal('socks-port-not-allowed', { port }) };
  }
  const route: Route = { ...target.route, port: routePort };
  return {
    ok: true,
    mode,
    route,
    destination: target.name,
    acceptTo: (to) => acceptTo(map, target.name, target.domain, route, to, options),
  };
}

/**
 * HTTPS at the SOCKS door: port 443, or a port a map entry names for its HTTPS services. TLS
 * only, from the first byte. A name the entry lists (its domain, its upload host) at such a port
 * goes to the entry's onion when it has a usable one; any other request through a Tor exit to
 * the name as given (refused in onion-only mode). Undefined when the request is not HTTPS.
 */
function httpsRequest(map: OnionMap, asked: AskedHost, port: number, options: SocksPolicyOptions): SocksDecision | undefined {
  const name = asked.name;
  const plainName = name?.ok && !name.domain.endsWith('.onion') ? name.domain : undefined;
  const entry = plainName === undefined ? undefined : map.httpsServiceOf(plainName);
  const named = entry?.https?.ports.includes(port) === true;
  if (port !== HTTPS_PORT && !named) return undefined;
  const https = (route: Route, destination: string): SocksDecision => ({ ok: true, mode: 'https', route, destination });
  if (plainName === undefined) {
    // An onion or an address: the general destination rules, at the asked port.
    const target = socksDestination(map, asked, options);
    return target.ok ? https({ ...target.route, port }, target.name) : target;
  }
  if (entry?.status === 'retired') return retired(entry);
  if (named && entry?.onion && (entry.status === 'active' || entry.status === 'unverified')) return https({ kind: 'onion', host: entry.onion, port }, plainName);
  if (options.onionOnly) {
    const why = entry?.onion ? `the onion serves no HTTPS on port ${port}` : undefined;
    return { ok: false, refusal: refusal('route-onion-only', { domain: plainName, ...(why ? { why } : {}) }) };
  }
  return https({ kind: 'clearnet', host: plainName, port }, plainName);
}

/** The host a SOCKS client asked for: an address, or a name normalised once for every rule. */
type AskedHost = { readonly address: string; readonly name?: undefined } | { readonly address?: undefined; readonly name: DomainResult };

function askedHost(host: string): AskedHost {
  return net.isIP(host) !== 0 ? { address: host } : { name: normalizeDomain(host) };
}

type Destination =
  | { readonly ok: true; readonly route: Route; readonly name: string; readonly domain?: string }
  | { readonly ok: false; readonly refusal: Refusal };

function socksDestination(map: OnionMap, asked: AskedHost, options: SocksPolicyOptions): Destination {
  if (asked.address !== undefined) {
    // An address means the client resolved the name itself, outside Tor; only a user map may name one.
    const address = asked.address;
    const mapped = map.entries().find((entry) => entry.host === address);
    if (!mapped || options.onionOnly) return { ok: false, refusal: refusal('socks-ip-destination') };
    return { ok: true, route: { kind: 'clearnet', host: address, port: mapped.port }, name: address, domain: mapped.domain };
  }
  const name = asked.name;
  if (!name.ok) return { ok: false, refusal: refusal('socks-bad-destination', { problem: name.problem }) };
  if (name.domain.endsWith('.onion')) {
    const onion = validateOnion(name.domain);
    if (!onion.ok) return { ok: false, refusal: refusal('socks-bad-onion', { problem: onion.problem }) };
    const retired = retiredOnion(map, onion.onion);
    if (retired) return retired;
    return { ok: true, route: { kind: 'onion', host: onion.onion, port: DEFAULT_CLIENT_PORT }, name: onion.onion };
  }
  const decision = decideRoute(map, name.domain, options);
  if (!decision.ok) return decision;
  return { ok: true, route: decision.route, name: name.domain, domain: name.domain };
}

/**
 * The stream's `to` must be a domain this destination can serve: the destination itself, a
 * domain whose mapped onion or host it is, or any domain when the client asked for an onion itself.
 */
function acceptTo(map: OnionMap, asked: string, destinationDomain: string | undefined, route: Route, to: string, options: SocksPolicyOptions): RouteDecision {
  const own = decideRoute(map, to, options);
  if (!own.ok && own.refusal.code === 'route-retired') return own;
  const entry = map.get(to);
  const serves =
    to === destinationDomain ||
    to === asked ||
    (route.kind === 'onion' && !destinationDomain) ||
    (entry !== undefined && (entry.onion === asked || entry.host === asked));
  if (!serves) return { ok: false, refusal: refusal('socks-to-mismatch', { asked, to }) };
  const pipelining = own.ok ? own.pipelining : options.pipelining !== false && entry?.pipelining !== false;
  return { ok: true, route, reason: route.kind === 'onion' ? 'mapped-onion' : 'mapped-clearnet', pipelining };
}
