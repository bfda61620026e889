import { DEFAULT_CLIENT_PORT, type EntryStatus } from './entry.js';
import type { OnionMap } from './onion-map.js';
import { validateOnion } from './onion-address.js';

export interface Route {
  readonly kind: 'onion' | 'clearnet';
  /** Passed to Tor as a SOCKS5 host name (or an address literal from a user map); never resolved here. */
  readonly host: string;
  readonly port: number;
}

export type RouteReason =
  | 'mapped-onion'
  | 'onion-domain'
  | 'mapped-clearnet'
  | 'unmapped-clearnet';

export type RouteDecision =
  | { readonly ok: true; readonly route: Route; readonly reason: RouteReason; readonly status?: EntryStatus; readonly note?: string }
  | { readonly ok: false; readonly code: 'retired' | 'onion-only' | 'bad-onion'; readonly text: string };

export interface RouteOptions {
  readonly onionOnly: boolean;
}

/** Where a connection for `domain` (already normalised) goes. Pure: no I/O, no name resolution. */
export function decideRoute(map: OnionMap, domain: string, options: RouteOptions): RouteDecision {
  if (domain.endsWith('.onion')) {
    const onion = validateOnion(domain);
    if (!onion.ok) return { ok: false, code: 'bad-onion', text: `the server address ${onion.problem}` };
    return { ok: true, route: { kind: 'onion', host: onion.onion, port: DEFAULT_CLIENT_PORT }, reason: 'onion-domain' };
  }
  const entry = map.get(domain);
  if (!entry) {
    if (options.onionOnly) {
      return { ok: false, code: 'onion-only', text: onionOnlyText(domain, 'no onion service is known for it') };
    }
    return { ok: true, route: { kind: 'clearnet', host: domain, port: DEFAULT_CLIENT_PORT }, reason: 'unmapped-clearnet' };
  }
  const note = entry.note;
  switch (entry.status) {
    case 'retired':
      return { ok: false, code: 'retired', text: note ?? `${domain} no longer offers an XMPP service` };
    case 'active':
    case 'unverified':
      if (entry.onion) {
        return {
          ok: true,
          route: { kind: 'onion', host: entry.onion, port: entry.port },
          reason: 'mapped-onion',
          status: entry.status,
          ...(note ? { note } : {}),
        };
      }
      break;
    case 'no-onion':
      break;
  }
  if (options.onionOnly) {
    return { ok: false, code: 'onion-only', text: onionOnlyText(domain, note ?? 'no onion service is known for it') };
  }
  return {
    ok: true,
    route: { kind: 'clearnet', host: entry.host ?? domain, port: entry.port },
    reason: 'mapped-clearnet',
    status: entry.status,
    ...(note ? { note } : {}),
  };
}

function onionOnlyText(domain: string, why: string): string {
  return `${domain} has no usable onion service, and onion-only mode forbids going through a Tor exit. ${capitalise(why)}`;
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
