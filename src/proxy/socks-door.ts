import type net from 'node:net';
import { UpstreamError } from '../common/errors.js';
import { wholeSeconds } from '../common/words.js';
import type { OnionMap } from '../onionmap/onion-map.js';
import { refusal, SOCKS_REPLY, type Refusal } from '../policy/refusals.js';
import { decideSocksRequest, type Route, type SocksDecision, type SocksPolicyOptions } from '../policy/routing.js';
import { TOR_WORDS } from '../policy/tor-words.js';
import { TlsRecordWalker } from '../policy/tls-records.js';
import type { Connection } from './connection.js';
import { Session, type SessionLimits } from './session.js';
import { Socks5Handshake, socksReply, type Socks5Request } from './socks5-handshake.js';

export interface SocksDoorOptions {
  readonly map: () => OnionMap;
  readonly policy: SocksPolicyOptions;
  /** Connects through Tor (the socket comes back paused); `isolationKey` picks the circuit; `send` goes first (optimistically). */
  readonly openTor: (route: Route, isolationKey: string | undefined, signal: AbortSignal, send?: { first: Buffer; optimistic: boolean }) => Promise<net.Socket>;
  /** The isolation key for a request, by its normalised destination or the client's own credentials. */
  readonly isolationKey: (request: Socks5Request, destination: string) => string | undefined;
  readonly limits: SessionLimits;
}

/**
 * One connection at the SOCKS door: the SOCKS5 handshake and the destination's policy; then, at
 * an XMPP port, success at once and the same STARTTLS session as the connect-server door (it
 * connects through Tor itself); at a direct-TLS or passed-through port, success only once Tor
 * connected (those clients read Tor's failure as a SOCKS reply), then a relay (TLS checked from
 * the first byte for direct TLS).
 */
export function acceptSocksClient(connection: Connection, options: SocksDoorOptions): void {
  const handshake = new Socks5Handshake();
  const client = connection.client;
  connection.phase = 'socks';
  // A reply is only sent once the client is waiting for one: during the greeting, `05 01` would read as a method choice.
  const refuse = (refused: Refusal): void =>
    connection.refuse(refused, handshake.awaitingReply ? socksReply(refused.socksReply) : undefined);
  connection.arm(options.limits.headerTimeoutMs, () => refuse(refusal('socks-timeout', { seconds: wholeSeconds(options.limits.headerTimeoutMs) })));
  connection.listen(client, 'data', (chunk) => {
    const step = handshake.feed(chunk);
    if (step.write) client.write(step.write);
    if (step.type === 'need-more') return;
    if (step.type === 'fail') return connection.refuse(refusal('socks-handshake', { problem: step.reason }));
    // The handshake is done; Tor's connect has its own, longer budget (onions can be slow).
    connection.disarm();
    connection.detach();
    void route(connection, options, step.request, step.rest, refuse);
  });
}

async function route(connection: Connection, options: SocksDoorOptions, request: Socks5Request, rest: Buffer, refuse: (r: Refusal) => void): Promise<void> {
  const client = connection.client;
  const decision = decideSocksRequest(options.map(), request.host, request.port, options.policy);
  if (!decision.ok) return refuse(decision.refusal);
  if (decision.mode === 'starttls') return speakXmppAtOnce(connection, options, request, decision, rest);
  connection.report.routed(decision.route, decision.mode, { port: decision.route.port }, decision.destination);
  // While Tor connects, keep reading (bounded) so that a client leaving is seen at once and
  // cancels the connect; what it sends early is handed on with the rest.
  const early: Buffer[] = [rest];
  let earlyBytes = rest.length;
  const limit = options.limits.xmlLimits.maxBytes;
  connection.listen(client, 'data', (chunk) => {
    earlyBytes += chunk.length;
    if (earlyBytes <= limit) early.push(chunk);
    else connection.destroy(refusal('client-limit', { whileConnecting: limit }));
  });
  connection.listen(client, 'end', () => connection.destroy('client-closed'));
  const connecting = Date.now();
  let server: net.Socket;
  try {
    server = await options.openTor(decision.route, options.isolationKey(request, decision.destination), connection.signal);
  } catch (error) {
    if (connection.ended) return;
    const failed = error instanceof UpstreamError ? error : new UpstreamError('tor-error', TOR_WORDS.failed);
    return refuse(refusal(failed.reason, { place: decision.route.kind, words: failed.words }));
  }
  if (!connection.useUpstream(server, () => connection.refuse(refusal('server-reset')))) return;
  connection.detach();
  connection.report.upstreamConnected(Date.now() - connecting);
  client.write(socksReply(SOCKS_REPLY.succeeded));
  handOver(connection, decision, Buffer.concat(early), options.limits);
}

/**
 * The XMPP ports: the client speaks XMPP to us next, so the SOCKS success goes at once and the
 * session connects through Tor as at the connect-server door (header and `<starttls/>` as
 * optimistic data); a Tor failure reaches the client as a stream error in Tor's words.
 */
function speakXmppAtOnce(connection: Connection, options: SocksDoorOptions, request: Socks5Request, decision: Extract<SocksDecision, { mode: 'starttls' }>, rest: Buffer): void {
  connection.client.write(socksReply(SOCKS_REPLY.succeeded));
  const isolationKey = options.isolationKey(request, decision.destination);
  const session = new Session(connection, {
    ...options.limits,
    decideRoute: decision.acceptTo,
    openUpstream: (route, _domain, signal, first, optimistic) => options.openTor(route, isolationKey, signal, { first, optimistic }),
  });
  session.feed(rest);
}

/** After success: a relay (direct TLS and HTTPS checked from the first byte; pass-through not at all). */
function handOver(connection: Connection, decision: Extract<SocksDecision, { ok: true }>, early: Buffer, limits: SessionLimits): void {
  connection.phase = decision.mode;
  if (decision.mode === 'passthrough') return connection.relay(early, undefined);
  const walkers = { client: new TlsRecordWalker('client'), server: new TlsRecordWalker('server') };
  const problem = early.length > 0 ? walkers.client.check(early) : undefined;
  if (problem !== undefined) return connection.cut('client', problem, walkers.client.failedOnHello);
  connection.relay(early, walkers);
  if (early.length === 0) {
    // Direct TLS has no stream header: its first bytes stand for one, and get the header budget
    // (else a silent client would hold its session and its Tor stream for as long as the server waits).
    connection.arm(limits.headerTimeoutMs, () => connection.refuse(refusal('header-timeout', { seconds: wholeSeconds(limits.headerTimeoutMs), directTls: true })));
    connection.client.once('data', () => connection.disarm());
  }
}
