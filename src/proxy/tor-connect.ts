import net from 'node:net';
import { formatEndpoint, type Endpoint } from '../common/endpoint.js';
import { UpstreamError } from '../common/errors.js';
import { errnoWords, wholeSeconds } from '../common/words.js';
import type { Route } from '../policy/routing.js';
import { describeSocksReply, TOR_WORDS } from '../policy/tor-words.js';
import { socks5Handshake } from './socks5-client.js';

export interface TorConnectOptions {
  readonly tor: Endpoint;
  readonly route: Route;
  readonly timeoutMs: number;
  /** SOCKS username/password: Tor's IsolateSOCKSAuth gives each distinct key its own circuit. */
  readonly isolationKey?: string;
  /** Aborted when the client is gone: the connection to Tor is dropped at once, not left to time out. */
  readonly signal?: AbortSignal;
  /** What the server gets first: with `optimistic`, sent right behind the CONNECT (Tor's optimistic data), else once Tor connected. */
  readonly first?: Buffer;
  readonly optimistic?: boolean;
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
  const first = options.first;
  const outcome = await socks5Handshake(socket, route, credentials, options.timeoutMs, signal, options.optimistic ? first : undefined);
  // The socket comes back paused, Tor's extra bytes unshifted: whoever reads it next gets them all.
  if (outcome.ok) {
    if (first && !options.optimistic) socket.write(first);
    return socket;
  }
  socket.destroy();
  switch (outcome.why) {
    case 'aborted':
      throw clientGone();
    case 'reply': {
      const { code, words } = describeSocksReply(outcome.code, route.kind);
      throw new UpstreamError(code, words);
    }
    case 'timeout':
      throw new UpstreamError('tor-timeout', TOR_WORDS.connectTimeout(wholeSeconds(options.timeoutMs)));
    default:
      throw new UpstreamError('tor-protocol', TOR_WORDS.protocol(formatEndpoint(tor)));
  }
}

function clientGone(): UpstreamError {
  return new UpstreamError('client-gone', TOR_WORDS.clientGone);
}

async function openTorSocket(tor: Endpoint, timeoutMs: number, signal: AbortSignal | undefined): Promise<net.Socket> {
  const socket = tor.kind === 'tcp'
    ? net.connect({ host: tor.host, port: tor.port, allowHalfOpen: true, noDelay: true })
    : net.connect({ path: tor.path, allowHalfOpen: true });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new UpstreamError('tor-timeout', TOR_WORDS.acceptTimeout(formatEndpoint(tor)))), timeoutMs);
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
        fail(new UpstreamError('proxy-out-of-descriptors', TOR_WORDS.outOfDescriptors));
        return;
      }
      fail(new UpstreamError('tor-unavailable', TOR_WORDS.notRunning(formatEndpoint(tor), errnoWords(error.code))));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

