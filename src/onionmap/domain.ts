import { domainToASCII } from 'node:url';
import net from 'node:net';

export type DomainResult = { ok: true; domain: string } | { ok: false; problem: string };

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const MAX_DOMAIN_LENGTH = 253;

/**
 * Normalises an XMPP domain (RFC 7622 domainpart): lower case, IDNA to ASCII, no trailing dot.
 * Refuses what cannot name a server through Tor: IP literals, local or resource parts, bad labels.
 * Pure string work: nothing here resolves a name.
 */
export function normalizeDomain(raw: string): DomainResult {
  if (raw.length === 0) return { ok: false, problem: 'the domain is empty' };
  if (raw.length > 1023) return { ok: false, problem: 'the domain is longer than 1023 characters' };
  if (raw.includes('@')) return { ok: false, problem: 'it is a JID with a user part, not a server domain' };
  if (raw.includes('/')) return { ok: false, problem: 'it has a resource part, not just a server domain' };
  const bare = raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw;
  if (net.isIP(bare) !== 0) return { ok: false, problem: 'it is an IP address, not a domain name' };
  const trimmed = raw.endsWith('.') ? raw.slice(0, -1) : raw;
  const ascii = domainToASCII(trimmed);
  if (ascii === '') return { ok: false, problem: 'it is not a valid internationalised domain name' };
  if (ascii.length > MAX_DOMAIN_LENGTH) {
    return { ok: false, problem: `it is longer than ${MAX_DOMAIN_LENGTH} characters` };
  }
  const labels = ascii.split('.');
  if (labels.some((label) => !LABEL.test(label))) {
    return { ok: false, problem: 'it is not a valid host name' };
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? '')) {
    return { ok: false, problem: 'it looks like a numeric address, not a domain name' };
  }
  return { ok: true, domain: ascii };
}
