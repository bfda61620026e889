import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { SocksClient } from 'socks';
import type { Route } from '../onionmap/route.js';
import { formatEndpoint, type Endpoint } from './endpoint.js';
import { UpstreamError } from './errors.js';

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

export function newIsolationKey(): string {
  return randomBytes(12).toString('base64url');
}

/**
 * Opens a connection to `route` through Tor's SOCKS5 port. The destination goes to Tor as a
 * host name (ATYP domain), so Tor resolves it; the only socket this opens is to Tor itself.
 */
export async function connectThroughTor(options: TorConnectOptions): Promise<net.Socket> {
  const { tor, route, signal } = options;
  if (signal?.aborted) throw clientGone();
  const socket = await openTorSocket(tor, options.timeoutMs, signal);
  const reply = sniffSocksReply(socket, options.isolationKey !== undefined);
  // The socket is half-open capable, so a Tor port that hangs up only ends it and the socks
  // library would wait for a close until the timeout: a hang-up (or the client leaving) fails now.
  const drop = (): void => {
    socket.destroy();
  };
  socket.once('end', drop);
  signal?.addEventListener('abort', drop, { once: true });
  try {
    await SocksClient.createConnection({
      existing_socket: socket,
      proxy: {
        host: tor.kind === 'tcp' ? tor.host : '127.0.0.1',
        port: tor.kind === 'tcp' ? tor.port : 9050,
        type: 5,
        ...(options.isolationKey ? { userId: 'xmpp-onion-proxy', password: options.isolationKey } : {}),
      },
      command: 'connect',
      destination: { host: route.host, port: route.port },
      timeout: options.timeoutMs,
    });
  } catch (error) {
    socket.destroy();
    if (signal?.aborted) throw clientGone();
    const code = reply.code();
    if (code !== undefined) {
      const { reason, words } = describeSocksReply(code, route.kind);
      throw new UpstreamError(reason, `${words} (SOCKS reply 0x${code.toString(16).padStart(2, '0')})`);
    }
    const message = (error as Error).message;
    if (/timed out/i.test(message)) {
      throw new UpstreamError('tor-timeout', `Tor did not connect within ${Math.round(options.timeoutMs / 1000)} seconds`);
    }
    throw new UpstreamError('tor-protocol', `Tor's SOCKS port at ${formatEndpoint(tor)} did not complete the SOCKS5 handshake`);
  } finally {
    reply.stop();
    socket.removeListener('end', drop);
    signal?.removeEventListener('abort', drop);
  }
  return socket;
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

/**
 * The `socks` package reports a refused CONNECT by name and has no names for Tor's extended
 * codes (0xF0–0xF7), so the reply byte is read here, beside it: method choice (2 bytes),
 * the username/password answer when offered (2 bytes), then the CONNECT reply's second byte.
 */
function sniffSocksReply(socket: net.Socket, offeredAuth: boolean): { code(): number | undefined; stop(): void } {
  const seen: number[] = [];
  let needed = 4;
  const onData = (chunk: Buffer): void => {
    for (const byte of chunk) {
      if (seen.length >= needed) break;
      seen.push(byte);
      if (seen.length === 2 && offeredAuth && seen[1] === 0x02) needed = 6;
    }
  };
  socket.prependListener('data', onData);
  // Only what has the shape of a SOCKS5 exchange is read as a reply code (not, say, an HTTP answer).
  const socks5 = (): boolean =>
    seen[0] === 0x05 && (seen[1] === 0x00 || seen[1] === 0x02) && (needed === 4 || (seen[2] === 0x01 && seen[3] === 0x00)) && seen[needed - 2] === 0x05;
  return {
    code: () => (seen.length >= needed && socks5() ? seen[needed - 1] : undefined),
    stop: () => socket.removeListener('data', onData),
  };
}
