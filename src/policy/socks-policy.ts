import net from 'node:net';
import { normalizeDomain } from '../onionmap/domain.js';
import { DEFAULT_CLIENT_PORT } from '../onionmap/entry.js';
import { validateOnion } from '../onionmap/onion-address.js';
import type { OnionMap } from '../onionmap/onion-map.js';
import { decideRoute, type Route } from '../onionmap/route.js';
import { streamRoute, type StreamRouteDecision } from './negotiation.js';
import { refusal } from './refusal.js';

export const DEFAULT_DIRECT_TLS_PORT = 5223;

/** What the SOCKS door does with a CONNECT: the STARTTLS policy, TLS from the first byte (XEP-0368), or plain passing. */
export type SocksMode = 'starttls' | 'direct-tls' | 'passthrough';

export type SocksDecision =
  | {
      readonly ok: true;
      readonly mode: SocksMode;
      readonly route: Route;
      /** For `starttls`: whether the stream's `to` may be served by this destination. */
      readonly acceptTo: (domain: string) => StreamRouteDecision;
    }
  /** `reply` is the RFC 1928 code the client gets; `code` and `words` go to the log. */
  | { readonly ok: false; readonly reply: number; readonly code: string; readonly words: string };

export interface SocksPolicyOptions {
  readonly onionOnly: boolean;
  readonly allowOtherPorts: boolean;
}

const NOT_ALLOWED = 0x02;
const HOST_UNREACHABLE = 0x04;

/**
 * Routes a SOCKS CONNECT by its destination: a mapped domain to its onion, a `.onion` as given,
 * any other name through a Tor exit; the port selects the policy. Pure: no I/O, no resolution.
 */
export function decideSocksRequest(map: OnionMap, host: string, port: number, options: SocksPolicyOptions): SocksDecision {
  const target = destination(map, host, options);
  if (!target.ok) return target;
  const entry = target.domain ? map.get(target.domain) : undefined;
  const clientPorts = new Set([DEFAULT_CLIENT_PORT, entry?.port]);
  const directTlsPorts = new Set([DEFAULT_DIRECT_TLS_PORT, entry?.directTlsPort]);
  let mode: SocksMode;
  let routePort: number;
  if (clientPorts.has(port)) {
    mode = 'starttls';
    routePort = target.route.port;
  } else if (directTlsPorts.has(port)) {
    mode = 'direct-tls';
    routePort = entry?.directTlsPort ?? port;
  } else if (options.allowOtherPorts) {
    mode = 'passthrough';
    routePort = port;
  } else {
    return { ok: false, reply: NOT_ALLOWED, code: 'socks-port-not-allowed',
      words: `port ${port} is neither an XMPP client port nor a direct-TLS port (--socks-allow-other-ports passes it through Tor)` };
  }
  const route: Route = { ...target.route, port: routePort };
  return { ok: true, mode, route, acceptTo: (to) => acceptTo(map, host, target.domain, route, to, options) };
}

type Destination =
  | { readonly ok: true; readonly route: Route; readonly domain?: string }
  | Extract<SocksDecision, { ok: false }>;

function destination(map: OnionMap, rawHost: string, options: SocksPolicyOptions): Destination {
  if (net.isIP(rawHost) !== 0) {
    // An address means the client resolved the name itself, outside Tor; only a user map may name one.
    const mapped = map.entries().find((entry) => entry.host === rawHost);
    if (!mapped || options.onionOnly) {
      return { ok: false, reply: NOT_ALLOWED, code: 'socks-ip-destination',
        words: 'the client asked for an IP address: it resolved the name itself, outside Tor (set the proxy type to Tor/Privacy so names go to Tor)' };
    }
    return { ok: true, route: { kind: 'clearnet', host: rawHost, port: mapped.port }, domain: mapped.domain };
  }
  const name = normalizeDomain(rawHost);
  if (!name.ok) return { ok: false, reply: HOST_UNREACHABLE, code: 'socks-bad-destination', words: `the destination ${name.problem}` };
  if (name.domain.endsWith('.onion')) {
    const onion = validateOnion(name.domain);
    if (!onion.ok) return { ok: false, reply: HOST_UNREACHABLE, code: 'socks-bad-onion', words: onion.problem };
    return { ok: true, route: { kind: 'onion', host: onion.onion, port: DEFAULT_CLIENT_PORT } };
  }
  const decision = decideRoute(map, name.domain, options);
  if (!decision.ok) return { ok: false, reply: NOT_ALLOWED, code: `route-${decision.code}`, words: decision.text };
  return { ok: true, route: decision.route, domain: name.domain };
}

/**
 * The stream's `to` must be a domain this destination can serve: the destination itself, a
 * domain whose mapped onion or host it is, or any domain when the client asked for an onion itself.
 */
function acceptTo(map: OnionMap, rawHost: string, destinationDomain: string | undefined, route: Route, to: string, options: SocksPolicyOptions): StreamRouteDecision {
  const own = decideRoute(map, to, options);
  if (!own.ok && own.code === 'retired') return streamRoute(own);
  const entry = map.get(to);
  const askedHost = rawHost.toLowerCase().replace(/\.$/, '');
  const serves =
    to === destinationDomain ||
    to === askedHost ||
    (route.kind === 'onion' && !destinationDomain) ||
    (entry !== undefined && (entry.onion === askedHost || entry.host === askedHost));
  if (!serves) {
    return { ok: false, refusal: refusal('socks-to-mismatch', 'host-unknown',
      `your client asked the proxy for ${askedHost} but its stream is for ${to}; refusing a server that does not match`) };
  }
  return { ok: true, route, reason: route.kind === 'onion' ? 'mapped-onion' : 'mapped-clearnet' };
}
