import type net from 'node:net';
import type { OnionMap } from '../onionmap/onion-map.js';
import type { Route } from '../onionmap/route.js';
import { decideSocksRequest, type SocksPolicyOptions } from '../policy/socks-policy.js';
import { TlsRecordWalker } from '../policy/tls-records.js';
import type { ConnectionReport } from './activity.js';
import { UpstreamError } from './errors.js';
import { startRelay, type RelayCounters } from './relay.js';
import { Session, type SessionOptions } from './session.js';
import { REPLY, Socks5Handshake, socksReply, type Socks5Request } from './socks5-handshake.js';

export interface SocksDoorOptions {
  readonly map: () => OnionMap;
  readonly policy: SocksPolicyOptions;
  /** Connects through Tor; `isolationKey` picks the circuit. */
  readonly openTor: (route: Route, isolationKey: string | undefined, signal?: AbortSignal) => Promise<net.Socket>;
  /** The isolation key for a request: from the client's own SOCKS credentials when it sent some. */
  readonly isolationKey: (request: Socks5Request, domain: string) => string | undefined;
  readonly session: Omit<SessionOptions, 'decideRoute' | 'openUpstream'>;
}

export interface Closable {
  destroy(reason: string): void;
}

/**
 * One connection at the SOCKS door: the SOCKS5 handshake, the destination's policy, the
 * connection through Tor, and only then success; after that, the same STARTTLS session as the
 * connect-server door, or a TLS-checked relay for direct TLS.
 */
export function acceptSocksClient(
  id: number,
  client: net.Socket,
  options: SocksDoorOptions,
  report: ConnectionReport,
  closed: (connection: Closable) => void,
): Closable {
  const handshake = new Socks5Handshake();
  let reason: string | undefined;
  let handedOff = false;
  let upstream: net.Socket | undefined;
  const connection: Closable = {
    destroy: (why) => {
      reason ??= why;
      upstream?.destroy();
      client.destroy();
    },
  };
  // A reply is only sent once the client is waiting for one: during the greeting, `05 01` would read as a method choice.
  const timer = setTimeout(() => refuse(handshake.awaitingRequest ? REPLY.generalFailure : undefined, 'socks-timeout', 'the SOCKS handshake did not finish in time'), options.session.headerTimeoutMs);
  timer.unref();

  const refuse = (reply: number | undefined, code: string, words: string): void => {
    clearTimeout(timer);
    reason ??= code;
    report.refused(code, { problem: words });
    client.removeListener('data', onData);
    client.on('data', () => {});
    if (reply === undefined) client.end();
    else client.end(socksReply(reply));
    setTimeout(() => client.destroy(), options.session.lingerMs).unref();
  };

  const onData = (chunk: Buffer): void => {
    const step = handshake.feed(chunk);
    if (step.type === 'need-more') {
      if (step.write) client.write(step.write);
      return;
    }
    if (step.type === 'fail') {
      if (step.write) client.write(step.write);
      refuse(undefined, 'socks-handshake', step.reason);
      return;
    }
    if (step.write) client.write(step.write);
    client.removeListener('data', onData);
    // The handshake is done; Tor's connect has its own, longer budget (onions can be slow).
    clearTimeout(timer);
    void route(step.request, step.rest);
  };

  const route = async (request: Socks5Request, rest: Buffer): Promise<void> => {
    const decision = decideSocksRequest(options.map(), request.host, request.port, options.policy);
    if (!decision.ok) return refuse(decision.reply, decision.code, decision.words);
    if (decision.mode !== 'starttls') report.routed(decision.route, decision.mode, { port: decision.route.port }, request.host);
    const connecting = Date.now();
    // While Tor connects, keep reading (bounded) so that a client leaving is seen at once
    // and cancels the connect; what it sends early is handed on with the rest.
    const early: Buffer[] = [rest];
    let earlyBytes = rest.length;
    const abort = new AbortController();
    const hold = (chunk: Buffer): void => {
      earlyBytes += chunk.length;
      if (earlyBytes <= options.session.xmlLimits.maxBytes) early.push(chunk);
      else if (!abort.signal.aborted) {
        reason ??= 'client-limit';
        report.refused(reason, { problem: `more than ${options.session.xmlLimits.maxBytes} bytes while Tor was connecting` });
        abort.abort();
      }
    };
    const gone = (): void => abort.abort();
    client.on('data', hold);
    client.once('end', gone);
    client.once('close', gone);
    try {
      upstream = await options.openTor(decision.route, options.isolationKey(request, request.host), abort.signal);
    } catch (error) {
      if (abort.signal.aborted) return void client.destroy();
      const failure = error instanceof UpstreamError ? error : new UpstreamError('tor-error', 'the connection through Tor failed');
      return refuse(socksReplyFor(failure.reason), failure.reason, failure.words);
    } finally {
      client.removeListener('data', hold);
      client.removeListener('end', gone);
      client.removeListener('close', gone);
    }
    if (abort.signal.aborted || client.destroyed) {
      upstream.destroy();
      client.destroy();
      return;
    }
    rest = Buffer.concat(early);
    report.upstreamConnected(Date.now() - connecting);
    const server = upstream;
    // The upstream was opened before the stream was seen: it lives and dies with the client,
    // whether or not a session ever takes it.
    server.on('error', () => client.destroy());
    client.on('close', () => server.destroy());
    client.write(socksReply(REPLY.succeeded));
    handedOff = true;
    if (decision.mode === 'starttls') {
      const session = new Session(id, client, {
        ...options.session,
        decideRoute: decision.acceptTo,
        openUpstream: () => Promise.resolve(server),
      }, report, { closed: () => closed(connection) });
      connection.destroy = (why) => session.destroy(why);
      session.feed(rest);
      return;
    }
    relayWithoutNegotiation(client, server, rest, decision.mode === 'direct-tls', options.session.headerTimeoutMs, report, () => closed(connection));
  };

  client.on('data', onData);
  client.on('error', () => {});
  client.on('close', () => {
    clearTimeout(timer);
    if (handedOff) return;
    upstream?.destroy();
    report.closed(reason ?? 'client-closed', 0, 0, 'socks');
    closed(connection);
  });
  return connection;
}

/** Direct TLS (XEP-0368): TLS record framing checked from the first byte; passthrough: nothing checked. */
function relayWithoutNegotiation(
  client: net.Socket,
  server: net.Socket,
  rest: Buffer,
  checkTls: boolean,
  headerTimeoutMs: number,
  report: ConnectionReport,
  closed: () => void,
): void {
  const counters: RelayCounters = { fromClient: 0, fromServer: 0 };
  let reason: string | undefined;
  client.on('close', () => {
    server.destroy();
    report.closed(reason ?? 'done', counters.fromClient, counters.fromServer, checkTls ? 'direct-tls' : 'passthrough');
    closed();
  });
  server.on('close', () => {
    if (!client.writableEnded) client.end();
  });
  const walker = new TlsRecordWalker();
  const cut = (from: 'client' | 'server', problem: string): void => {
    reason ??= `tls-framing-${from}`;
    report.refused(reason, { problem }, 'cut: not TLS');
    server.destroy();
    client.destroy();
  };
  if (!checkTls) {
    if (rest.length > 0) server.write(rest);
    client.pipe(server);
    server.pipe(client);
    return;
  }
  if (rest.length > 0) {
    const problem = walker.check(rest);
    if (problem) return cut('client', problem);
    counters.fromClient += rest.length;
    server.write(rest);
  } else {
    // Direct TLS has no stream header: its first bytes stand for one, and get the header budget
    // (else a silent client would hold its session and its Tor stream for as long as the server waits).
    const timer = setTimeout(() => {
      reason ??= 'header-timeout';
      report.refused(reason, { problem: 'the client sent no TLS ClientHello in time' });
      server.destroy();
      client.destroy();
    }, headerTimeoutMs);
    timer.unref();
    client.once('data', () => clearTimeout(timer));
    client.once('close', () => clearTimeout(timer));
  }
  report.tlsStarted(rest.length);
  startRelay(client, server, walker, counters, cut);
}

/** Tor's failure as the closest RFC 1928 reply; the reason itself goes to the log. */
export function socksReplyFor(reason: string): number {
  switch (reason) {
    case 'socks-not-allowed':
    case 'onion-auth-missing':
    case 'onion-auth-wrong':
      return REPLY.notAllowed;
    case 'socks-network-unreachable':
      return REPLY.networkUnreachable;
    case 'socks-host-unreachable':
    case 'onion-not-found':
    case 'onion-intro-failed':
    case 'onion-rendezvous-failed':
    case 'onion-intro-timeout':
    case 'onion-address-invalid':
      return REPLY.hostUnreachable;
    case 'socks-connection-refused':
      return REPLY.connectionRefused;
    case 'socks-ttl-expired':
    case 'tor-timeout':
      return REPLY.ttlExpired;
    case 'socks-address-not-supported':
      return REPLY.addressTypeNotSupported;
    default:
      return REPLY.generalFailure;
  }
}
