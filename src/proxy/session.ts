import type net from 'node:net';
import { UpstreamError } from '../common/errors.js';
import { wholeSeconds } from '../common/words.js';
import { STREAM_ID_PREFIX, type Action, type NegotiationEvent } from '../policy/negotiation.js';
import { Negotiator } from '../policy/negotiator.js';
import { refusal } from '../policy/refusals.js';
import type { Route, RouteDecision } from '../policy/routing.js';
import { TOR_WORDS } from '../policy/tor-words.js';
import type { XmlLimits } from '../policy/xml-events.js';
import type { Connection } from './connection.js';
import { MAX_HELD_TLS_BYTES } from './negotiation-memory.js';

export interface SessionLimits {
  readonly xmlLimits: XmlLimits;
  readonly headerTimeoutMs: number;
  readonly negotiationTimeoutMs: number;
}

export interface SessionOptions extends SessionLimits {
  /** Where the stream's `to` may go: the onion map (connect-server door) or the SOCKS destination's check. */
  readonly decideRoute: (domain: string) => RouteDecision;
  /**
   * Opens the upstream, handed over paused, and sends it `first`: through Tor (`optimistic`:
   * right behind the SOCKS request), or on the connection the SOCKS door already made.
   */
  readonly openUpstream: (route: Route, domain: string, signal: AbortSignal, first: Buffer, optimistic: boolean) => Promise<net.Socket>;
}

/**
 * The STARTTLS negotiation of one connection: bytes from both sides into the policy, its
 * actions carried out on the connection, which relays once the server said `<proceed/>`.
 */
export class Session {
  readonly #connection: Connection;
  readonly #options: SessionOptions;
  readonly #negotiator: Negotiator;

  constructor(connection: Connection, options: SessionOptions) {
    this.#connection = connection;
    this.#options = options;
    this.#negotiator = new Negotiator({
      decideRoute: options.decideRoute,
      streamId: `${STREAM_ID_PREFIX}${connection.id}`,
      maxHeldBytes: MAX_HELD_TLS_BYTES,
    }, options.xmlLimits);
    connection.phase = this.#negotiator.state.phase;
    connection.listen(connection.client, 'data', (chunk) => this.#run(this.#negotiator.fromClient(chunk)));
    connection.listen(connection.client, 'end', () => this.#dispatch({ type: 'eof', from: 'client' }));
    connection.arm(options.headerTimeoutMs, () => this.#timeout('header', options.headerTimeoutMs));
  }

  /** Bytes the client sent before the session existed (after its SOCKS request). */
  feed(chunk: Buffer): void {
    if (chunk.length > 0) this.#run(this.#negotiator.fromClient(chunk));
  }

  #timeout(stage: 'header' | 'negotiation', ms: number): void {
    this.#dispatch({ type: 'timeout', stage, seconds: wholeSeconds(ms) });
  }

  #dispatch(event: NegotiationEvent): void {
    this.#run(this.#negotiator.event(event));
  }

  #run(actions: readonly Action[]): void {
    const connection = this.#connection;
    const phase = this.#negotiator.state.phase;
    if (connection.phase === 'AwaitClientHeader' && phase === 'AwaitUpstream') {
      connection.arm(this.#options.negotiationTimeoutMs, () => this.#timeout('negotiation', this.#options.negotiationTimeoutMs));
    }
    connection.phase = phase;
    for (const action of coalesceSends(actions)) this.#execute(action);
  }

  #execute(action: Action): void {
    const connection = this.#connection;
    switch (action.type) {
      case 'connect':
        connection.report.routed(action.route, 'starttls', { why: action.decision.reason, status: action.decision.status }, this.#negotiator.state.domain, action.decision.note);
        this.#connect(action.route, Buffer.from(action.first), action.optimistic);
        return;
      case 'send':
        (action.to === 'client' ? connection.client : connection.upstream)?.write(action.data);
        return;
      case 'refuse':
        connection.refuse(action.refusal, action.toClient);
        return;
      case 'close':
        connection.close(action.reason, action.toClient);
        return;
      case 'start-relay':
        connection.relay(action.clientPreamble, action.walkers);
        return;
    }
  }

  #connect(route: Route, first: Buffer, optimistic: boolean): void {
    const connection = this.#connection;
    const started = Date.now();
    this.#options.openUpstream(route, this.#negotiator.state.domain ?? '', connection.signal, first, optimistic).then(
      (server) => {
        const lost = (): void => this.#dispatch({ type: 'upstream-failed', refusal: refusal('server-reset') });
        if (!connection.useUpstream(server, lost) || this.#negotiator.state.phase !== 'AwaitUpstream') return;
        connection.report.upstreamConnected(Date.now() - started);
        connection.listen(server, 'data', (chunk) => this.#run(this.#negotiator.fromServer(chunk)));
        connection.listen(server, 'end', () => this.#dispatch({ type: 'eof', from: 'server' }));
        this.#dispatch({ type: 'upstream-connected' });
        server.resume();
      },
      (error: unknown) => {
        if (connection.ended) return;
        const failed = error instanceof UpstreamError ? error : new UpstreamError('tor-error', TOR_WORDS.failed);
        this.#dispatch({ type: 'upstream-failed', refusal: refusal(failed.reason, { place: route.kind, words: failed.words }) });
      },
    );
  }
}

/** Consecutive sends to the same side become one write (a server's header and features often arrive together). */
function coalesceSends(actions: readonly Action[]): readonly Action[] {
  if (actions.length < 2) return actions;
  const out: Action[] = [];
  for (const action of actions) {
    const last = out[out.length - 1];
    if (action.type === 'send' && last?.type === 'send' && last.to === action.to) {
      out[out.length - 1] = { type: 'send', to: action.to, data: last.data + action.data };
    } else {
      out.push(action);
    }
  }
  return out;
}
