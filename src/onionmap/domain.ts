import net from 'node:net';
import { toASCII } from 'tr46';

export type DomainResult = { ok: true; domain: string } | { ok: false; problem: string };

/** RFC 7622 §3.2: a domainpart is at most 1023 octets. */
const MAX_DOMAINPART_BYTES = 1023;
/** RFC 1035 §2.3.4, as written in ASCII (RFC 5890 §2.3.2.1). */
const MAX_DNS_NAME = 253;
const MAX_LABEL = 63;

/**
 * A label UTS #46 leaves as it is but for its case: ASCII letters and digits, inner hyphens, no
 * `--` in the third and fourth places (that is where `xn--` and other reserved labels have it).
 * Most names are all such labels, and skip the (slower) conversion.
 */
const PLAIN_LABEL = /^(?![a-z0-9-]{2}--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/** UTS #46 processing held to IDNA 2008 (RFC 5891 §4, RFC 5892, RFC 5893); DNS lengths are checked below, in words. */
export const STRICT_IDNA = {
  checkHyphens: true,
  checkBidi: true,
  checkJoiners: true,
  useSTD3ASCIIRules: true,
  transitionalProcessing: false,
  verifyDNSLength: false,
  ignoreInvalidPunycode: false,
} as const;

/** What an ASCII domain may hold (letters of either case, digits, hyphens, dots); everything else is named in the refusal. */
const ASCII_DOMAIN_CHARACTER = /[A-Za-z0-9.-]/;
/** Invisible characters UTS #46 would silently drop (a soft hyphen, a variation selector): refused, not dropped. The two joiners are IDNA 2008's to judge (RFC 5892 Appendix A). */
const INVISIBLE = /(?![\u200c\u200d])\p{Default_Ignorable_Code_Point}/u;

/**
 * The one parser of server names, for both doors, the map's keys and `onionmap lookup`: an XMPP
 * domainpart (RFC 7622 §3.2) converted by strict IDNA 2008 / UTS #46 to lower-case ASCII, a final
 * dot stripped. Anything else is refused with a reason that never repeats the name. There is no
 * URL parsing here: `?`, `#`, `\`, spaces and control characters are refused, never cut or dropped.
 * Pure string work: nothing here resolves a name.
 */
export function normalizeDomain(raw: string): DomainResult {
  if (raw.length === 0) return { ok: false, problem: 'the domain is empty' };
  if (Buffer.byteLength(raw) > MAX_DOMAINPART_BYTES) return { ok: false, problem: `the domain is longer than ${MAX_DOMAINPART_BYTES} bytes` };
  if (raw.includes('@')) return { ok: false, problem: 'it is a JID with a user part, not a server domain' };
  if (raw.includes('/')) return { ok: false, problem: 'it has a resource part, not just a server domain' };
  const bare = raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw;
  if (net.isIP(bare) !== 0) return { ok: false, problem: 'it is an IP address, not a domain name' };
  const forbidden = firstForbiddenAscii(raw);
  if (forbidden !== undefined) return { ok: false, problem: `it contains ${codePoint(forbidden)}, which no domain name can hold` };
  const invisible = INVISIBLE.exec(raw)?.[0];
  if (invisible !== undefined) return { ok: false, problem: `it contains ${codePoint(invisible)}, an invisible character` };
  const trimmed = raw.endsWith('.') ? raw.slice(0, -1) : raw;
  const ascii = trimmed.split('.').every((label) => PLAIN_LABEL.test(label)) ? trimmed.toLowerCase() : toASCII(trimmed, STRICT_IDNA);
  if (ascii === null) return { ok: false, problem: 'it is not a valid domain name under IDNA 2008 (RFC 5891)' };
  if (ascii.length > MAX_DNS_NAME) return { ok: false, problem: `it is longer than ${MAX_DNS_NAME} characters` };
  const labels = ascii.split('.');
  if (labels.some((label) => label.length === 0)) return { ok: false, problem: 'it has an empty label (two dots in a row, or a leading dot)' };
  if (labels.some((label) => label.length > MAX_LABEL)) return { ok: false, problem: `it has a label longer than ${MAX_LABEL} characters` };
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? '')) {
    return { ok: false, problem: 'it looks like a numeric address, not a domain name' };
  }
  return { ok: true, domain: ascii };
}

function firstForbiddenAscii(raw: string): string | undefined {
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (raw.charCodeAt(i) < 0x80 && !ASCII_DOMAIN_CHARACTER.test(c)) return c;
  }
  return undefined;
}

function codePoint(c: string): string {
  return `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}
