import net from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Route } from '../onionmap/route.js';
import { formatEndpoint, type Endpoint } from './endpoint.js';
import { UpstreamError } from './errors.js';
import { socks5Handshake } from './socks5-client.js';

export interface TorConnectOptions {
  readonly tor: Endpoint;
  readonly route: Route;
  readonly timeoutMs: number;
  /** SOCKS username/password: Tor's IsolateSOCKSAuth gives each distinct key its own circuit. */
  readonly isolationKey?: string;
  /** Aborted when the client is gone: the connection to Tor is dropped at once, not left to time out. */
  readonly signal?: AbortSignal;
}

/** RFC 1928 §6 replies and Tor's extended onion replies (tor ≥ 0.4.3, `ExtendedErrors`). */
const SOCKS_REPLIES: ReadonlyMap<number, readonly [reason: string, words: string]> = new Map([
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

export function describeSocksReply(code: number, kind: Route['kind'] = 'clearnet'): { reason: string; words: string } {
  // Tor answers 0x01 when an onion service is up but nothing listens on the port asked for.
  if (code === 0x01 && kind === 'onion') {
    return { reason: 'socks-general-failure', words: 'Tor could not connect to the onion service (general failure: the service may be down, or not serving this port)' };
  }
  const known = SOCKS_REPLIES.get(code);
  if (known) return { reason: known[0], words: known[1] };
  return { reason: 'socks-unknown-reply', words: `Tor answered with an unknown SOCKS reply 0x${code.toString(16)}` };
}

const ISOLATION_PREFIX = randomBytes(9).toString('base64url');
let isolationCount = 0;

/** Distinct per call (all Tor needs to give each connection its own circuit); no random bytes per connection. */
export function newIsolationKey(): string {
  isolationCount = (isolationCount + 1) % Number.MAX_SAFE_INTEGER;
  return `${ISOLATION_PREFIX}.${isolationCount.toString(36)}`;
}

/**
 * Opens a connection to `route` through Tor's SOCKS5 port. The destination goes to Tor as a
 * host name (ATYP domain), so Tor resolves it; the only socket this opens is to Tor itself.
 */
export async function connectThroughTor(options: TorConnectOptions): Promise<net.Socket> {
  const { tor, route, signal } = options;
  if (signal?.aborted) throw clientGone();
  const socket = await openTorSocket(tor, options.timeoutMs, signal);
  const credentials = options.isolationKey ? { username: 'xmpp-onion-proxy', password: options.isolationKey } : undefined;
  const outcome = await socks5Handshake(socket, route, credentials, options.timeoutMs, signal);
  if (outcome.ok) {
    if (outcome.rest.length > 0) socket.unshift(outcome.rest);
    return socket;
  }
  socket.destroy();
  switch (outcome.why) {
    case 'aborted':
      throw clientGone();
    case 'reply': {
      const { reason, words } = describeSocksReply(outcome.code, route.kind);
      throw new UpstreamError(reason, `${words} (SOCKS reply 0x${outcome.code.toString(16).padStart(2, '0')})`);
    }
    case 'timeout':
      throw new UpstreamError('tor-timeout', `Tor did not connect within ${seconds(options.timeoutMs)}`);
    default:
      throw new UpstreamError('tor-protocol', `Tor's SOCKS port at ${formatEndpoint(tor)} did not complete the SOCKS5 handshake`);
  }
}

function clientGone(): UpstreamError {
  return new UpstreamError('client-gone', 'the client left before Tor connected');
}

async function openTorSocket(tor: Endpoint, timeoutMs: number, signal: AbortSignal | undefined): Promise<net.Socket> {
  const socket = tor.kind === 'tcp'
    ? net.connect({ host: tor.host, port: tor.port, allowHalfOpen: true, noDelay: true })
    : net.connect({ path: tor.path, allowHalfOpen: true });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new UpstreamError('tor-timeout', `Tor's SOCKS port at ${formatEndpoint(tor)} did not accept the connection in time`)), timeoutMs);
    timer.unref();
    const abort = (): void => fail(clientGone());
    const fail = (error: Error): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
      socket.destroy();
      reject(error);
    };
    signal?.addEventListener('abort', abort, { once: true });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EMFILE' || error.code === 'ENFILE') {
        fail(new UpstreamError('proxy-out-of-descriptors', 'the proxy has run out of file descriptors (lower --max-connections or raise its limit)'));
        return;
      }
      const why = error.code === 'ECONNREFUSED' ? 'connection refused'
        : error.code === 'ENOENT' ? 'no such socket'
        : error.code === 'EACCES' ? 'permission denied'
        : (error.code ?? 'error');
      fail(new UpstreamError('tor-unavailable', `Tor is not running at ${formatEndpoint(tor)} (${why})`));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

function seconds(ms: number): string {
  const n = Math.round(ms / 1000);
  return n === 1 ? '1 second' : `${n} seconds`;
}
