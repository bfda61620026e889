import { seconds } from '../common/words.js';
import type { UpstreamCode } from './refusals.js';

/** Tor's answers and failures in words: what `onionmap check`, the log and a refused client read. */

/** RFC 1928 §6 replies and Tor's extended onion replies (tor ≥ 0.4.3, `ExtendedErrors`). */
const SOCKS_REPLIES: ReadonlyMap<number, readonly [code: UpstreamCode, words: string]> = new Map([
  [0x01, ['socks-general-failure', 'Tor could not make the connection (general failure)']],
  [0x02, ['socks-not-allowed', 'Tor refused the connection (not allowed by its rules)']],
  [0x03, ['socks-network-unreachable', 'Tor could not reach the network']],
  [0x04, ['socks-host-unreachable', 'Tor could not reach the host']],
  [0x05, ['socks-connection-refused', 'the server refused the connection (nothing listens on that port)']],
  [0x06, ['socks-ttl-expired', 'the connection through Tor timed out']],
  [0x07, ['socks-command-not-supported', 'Tor does not support the request']],
  [0x08, ['socks-address-not-supported', 'Tor does not support this kind of address']],
  [0xf0, ['onion-not-found', 'Tor found no descriptor for this onion service: it is offline, gone, or the address is wrong']],
  [0xf1, ['onion-descriptor-invalid', "the onion service's descriptor is invalid"]],
  [0xf2, ['onion-intro-failed', "Tor could not reach the onion service's introduction points: the service is probably down"]],
  [0xf3, ['onion-rendezvous-failed', 'Tor could not complete the rendezvous with the onion service']],
  [0xf4, ['onion-auth-missing', 'the onion service requires client authorization, which is not configured']],
  [0xf5, ['onion-auth-wrong', 'the onion service refused our client authorization']],
  [0xf6, ['onion-address-invalid', 'Tor says the onion address is invalid']],
  [0xf7, ['onion-intro-timeout', 'introduction to the onion service timed out: the service is probably down']],
]);

/** Tor's SOCKS reply as a code and words, the reply itself named at the end. */
export function describeSocksReply(reply: number, kind: 'onion' | 'clearnet' = 'clearnet'): { code: UpstreamCode; words: string } {
  const hex = `(SOCKS reply 0x${reply.toString(16).padStart(2, '0')})`;
  // Tor answers 0x01 when an onion service is up but nothing listens on the port asked for.
  if (reply === 0x01 && kind === 'onion') {
    return { code: 'socks-general-failure', words: `Tor could not connect to the onion service (general failure: the service may be down, or not serving this port) ${hex}` };
  }
  const known = SOCKS_REPLIES.get(reply);
  if (known) return { code: known[0], words: `${known[1]} ${hex}` };
  return { code: 'socks-unknown-reply', words: `Tor answered with an unknown SOCKS reply 0x${reply.toString(16)} ${hex}` };
}

export const TOR_WORDS = {
  notRunning: (tor: string, why: string) => `Tor is not running at ${tor} (${why})`,
  acceptTimeout: (tor: string) => `Tor's SOCKS port at ${tor} did not accept the connection in time`,
  connectTimeout: (s: number) => `Tor did not connect within ${seconds(s)}`,
  protocol: (tor: string) => `Tor's SOCKS port at ${tor} did not complete the SOCKS5 handshake`,
  outOfDescriptors: 'the proxy has run out of file descriptors (lower --max-connections or raise its limit)',
  clientGone: 'the client left before Tor connected',
  failed: 'the connection through Tor failed',
} as const;
