import { normalizeDomain } from '../onionmap/domain.js';
import { decideRoute, type RouteDecision } from '../policy/routing.js';
import { UsageError } from '../common/errors.js';
import { EXIT } from './exit-codes.js';
import { describeOrigin, loadCliMap } from './onionmap-shared.js';

/** Tells, in words, what the daemon would do with a client whose stream header says to='DOMAIN'. */
export function lookupCommand(raw: string, options: { onionOnly?: boolean; map?: string }): number {
  const normal = normalizeDomain(raw);
  if (!normal.ok) throw new UsageError(`"${raw}" is not a usable XMPP domain: ${normal.problem}`);
  const domain = normal.domain;
  const { map } = loadCliMap(options.map);
  const entry = map.get(domain);
  const decision = decideRoute(map, domain, { onionOnly: options.onionOnly === true });
  const lines = [`${domain}: ${headline(decision)}`, `  why: ${why(decision, domain, entry !== undefined)}`];
  if (entry) {
    lines.push(`  status: ${entry.status}`);
    if (entry.onion && !(decision.ok && decision.route.host === entry.onion)) lines.push(`  onion (not used): ${entry.onion}`);
    if (entry.s2sPort !== undefined) lines.push(`  server-to-server port (not used for clients): ${entry.s2sPort}`);
    lines.push(`  source: ${entry.source ?? '(none given)'}`, `  entry from: ${describeOrigin(entry)}`);
  }
  if (decision.ok) {
    lines.push('  the daemon still requires STARTTLS on this connection and refuses it otherwise');
    if (decision.status === 'unverified') lines.push(`  unverified: try it with \`xmpp-onion-proxy onionmap check ${domain}\``);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return decision.ok ? EXIT.ok : EXIT.failure;
}

function headline(decision: RouteDecision): string {
  if (!decision.ok) return 'refused';
  const { route } = decision;
  return route.kind === 'onion'
    ? `to the onion service ${route.host} port ${route.port}, through Tor`
    : `through a Tor exit to ${route.host} port ${route.port}`;
}

function why(decision: RouteDecision, domain: string, mapped: boolean): string {
  if (!decision.ok) return decision.refusal.text;
  switch (decision.reason) {
    case 'onion-domain':
      return 'the domain is itself an onion address';
    case 'unmapped-clearnet':
      return `${domain} is not in the map: Tor resolves the name at the exit (no SRV lookup, so the server must answer on port ${decision.route.port} at that name)`;
    case 'mapped-onion':
    case 'mapped-clearnet':
      return decision.note ?? (mapped ? 'the map says so (no note given)' : 'the map says so');
  }
}
