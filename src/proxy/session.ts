import type net from 'node:net';
import type { Route } from '../onionmap/route.js';
import type { Action, NegotiationEvent, StreamRouteDecision } from '../policy/negotiation.js';
import { Negotiator } from '../policy/negotiator.js';
import { refusal, type Refusal } from '../policy/refusal.js';
import type { TlsRecordWalker } from '../policy/tls-records.js';
import type { ConnectionReport } from './activity.js';
import type { XmlLimits } from '../policy/xml-events.js';
import { UpstreamError } from './errors.js';
import { startRelay, type RelayCounters } from './relay.js';

export type Isolation = 'per-connection' | 'per-domain' | 'none';

export interface SessionOptions {
  /** Where the stream's `to` may go: the onion map (connect-server door) or the SOCKS destination's check. */
  readonly decideRoute: (domain: string) => StreamRouteDecision;
  /** Opens the upstream: through Tor, or the connection the SOCKS door already made. */
  readonly openUpstream: (route: Route, domain: string, signal: AbortSignal) => Promise<net.Socket>;
  readonly xmlLimits: XmlLimits;
  readonly headerTimeoutMs: number;
  readonly negotiationTimeoutMs: number;
  /** How long a refused client may take to read its stream error before the socket is destroyed. */
  readonly lingerMs: number;
}

/** What a session reports to its server, for counters and the control socket. */
export interface SessionObserver {
  closed(session: Session): void;
}

const MAX_HELD_TLS_BYTES = 32 * 1024;
/** One reason for every ended session: `abort()` without one builds an error with a stack each time. */
const SESSION_ENDED = new Error('session ended');

/** One client connection: negotiation through the policy, then the TLS relay. */
export class Session {
  readonly id: number;
  readonly startedAt = Date.now();
  readonly counters: RelayCounters = { fromClient: 0, fromServer: 0 };
  #negotiator: Negotiator | undefined;
  #phase = 'AwaitClientHeader';
  #domain: string | undefined;
  #client: net.Socket;
  #server: net.Socket | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closeReason: string | undefined;
  #closed = false;
  /** Aborted when the session ends, so a connect still under way lets go of Tor at once. */
  readonly #abort = new AbortController();
  readonly #report: ConnectionReport;
  readonly #options: SessionOptions;
  readonly #observer: SessionObserver;

  constructor(id: number, client: net.Socket, options: SessionOptions, report: ConnectionReport, observer: SessionObserver) {
    this.id = id;
    this.#client = client;
    this.#options = options;
    this.#report = report;
    this.#observer = observer;
    this.#negotiator = new Negotiator({
      decideRoute: options.decideRoute,
      streamId: `xop-${id}`,
      maxHeldBytes: MAX_HELD_TLS_BYTES,
    }, options.xmlLimits);
    client.setNoDelay(true);
    client.on('data', this.#onClientData);
    client.on('end', this.#onClientEnd);
    client.on('error', this.#onClientError);
    client.on('close', this.#onClientClose);
    this.#arm(options.headerTimeoutMs, 'header');
  }

  get phase(): string {
    return this.#phase;
  }

  /** Bytes the client sent before the session existed (after its SOCKS request). */
  feed(chunk: Buffer): void {
    if (chunk.length > 0) this.#onClientData(chunk);
  }

  /** Ends the session at once (daemon shutdown). */
  destroy(reason: string): void {
    this.#closeReason ??= reason;
    this.#server?.destroy();
    this.#client.destroy();
  }

  #arm(ms: number, stage: 'header' | 'negotiation'): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#dispatch({ type: 'timeout', stage, seconds: Math.round(ms / 1000) });
    }, ms);
    this.#timer.unref();
  }

  #onClientData = (chunk: Buffer): void => {
    if (this.#negotiator) this.#run(this.#negotiator.fromClient(chunk));
  };

  #onServerData = (chunk: Buffer): void => {
    if (this.#negotiator) this.#run(this.#negotiator.fromServer(chunk));
  };

  #onClientEnd = (): void => {
    this.#dispatch({ type: 'eof', from: 'client' });
  };

  #onServerEnd = (): void => {
    this.#dispatch({ type: 'eof', from: 'server' });
  };

  #onClientError = (error: NodeJS.ErrnoException): void => {
    this.#closeReason ??= `client-${error.code ?? 'error'}`;
    this.#server?.destroy();
  };

  #onServerError = (error: NodeJS.ErrnoException): void => {
    if (this.#phase === 'Relaying') {
      this.#closeReason ??= `server-${error.code ?? 'error'}`;
      this.#client.destroy();
      return;
    }
    this.#dispatch({ type: 'upstream-failed', refusal: refusal('server-reset', 'remote-connection-failed',
      'the connection to the server broke before encryption was set up') });
  };

  #onClientClose = (): void => {
    this.#server?.destroy();
    this.#finish();
  };

  #dispatch(event: NegotiationEvent): void {
    if (this.#negotiator) this.#run(this.#negotiator.event(event));
  }

  #run(actions: readonly Action[]): void {
    const negotiator = this.#negotiator;
    if (!negotiator) return;
    const state = negotiator.state;
    if (this.#phase === 'AwaitClientHeader' && state.phase === 'AwaitUpstream') {
      this.#arm(this.#options.negotiationTimeoutMs, 'negotiation');
    }
    this.#phase = state.phase;
    this.#domain = state.domain;
    for (const action of coalesceSends(actions)) this.#execute(action);
  }

  #execute(action: Action): void {
    switch (action.type) {
      case 'connect':
        this.#report.routed(action.route, 'starttls', { why: action.decision.reason, status: action.decision.status }, this.#domain, action.decision.note);
        this.#connect(action);
        return;
      case 'send':
        (action.to === 'client' ? this.#client : this.#server)?.write(action.data);
        return;
      case 'refuse':
        this.#refuse(action.refusal, action.toClient);
        return;
      case 'close':
        this.#closeReason ??= action.reason;
        this.#endClient(action.toClient);
        return;
      case 'start-relay':
        this.#startRelay(action.clientPreamble, action.clientWalker);
        return;
    }
  }

  #connect(action: Extract<Action, { type: 'connect' }>): void {
    const started = Date.now();
    this.#options.openUpstream(action.route, this.#domain ?? '', this.#abort.signal).then(
      (server) => {
        if (this.#closed || this.#phase !== 'AwaitUpstream') {
          server.destroy();
          return;
        }
        this.#report.upstreamConnected(Date.now() - started);
        this.#server = server;
        server.on('data', this.#onServerData);
        server.on('end', this.#onServerEnd);
        server.on('error', this.#onServerError);
        server.on('close', () => {
          if (this.#phase !== 'Relaying') this.#client.destroy();
        });
        this.#dispatch({ type: 'upstream-connected' });
      },
      (error: unknown) => {
        if (this.#closed) return;
        const upstream = error instanceof UpstreamError ? error : new UpstreamError('tor-error', 'the connection through Tor failed');
        const where = action.route.kind === 'onion' ? 'the onion service' : 'the server through a Tor exit';
        this.#dispatch({ type: 'upstream-failed', refusal: refusal(upstream.reason, 'remote-connection-failed',
          `could not reach ${where}: ${upstream.words}; nothing was sent`) });
      },
    );
  }

  #refuse(refused: Refusal, toClient: string): void {
    this.#closeReason ??= refused.code;
    this.#report.refused(refused.code, { condition: refused.condition });
    this.#server?.destroy();
    this.#endClient(toClient);
  }

  /** Sends the last words, then waits (bounded) for the client to close, discarding what it still sends. */
  #endClient(last: string | undefined): void {
    clearTimeout(this.#timer);
    this.#negotiator = undefined;
    this.#server?.end();
    const client = this.#client;
    client.removeListener('data', this.#onClientData);
    client.removeListener('end', this.#onClientEnd);
    client.on('data', () => {});
    client.on('end', () => client.destroy());
    if (last === undefined) client.end();
    else client.end(last);
    this.#timer = setTimeout(() => client.destroy(), this.#options.lingerMs);
    this.#timer.unref();
  }

  #startRelay(clientPreamble: Buffer, clientWalker: TlsRecordWalker): void {
    const server = this.#server;
    if (!server) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#negotiator = undefined;
    const client = this.#client;
    client.removeListener('data', this.#onClientData);
    client.removeListener('end', this.#onClientEnd);
    server.removeListener('data', this.#onServerData);
    server.removeListener('end', this.#onServerEnd);
    this.#report.tlsStarted(clientPreamble.length);
    if (clientPreamble.length > 0) {
      this.counters.fromClient += clientPreamble.length;
      server.write(clientPreamble);
    }
    startRelay(client, server, clientWalker, this.counters, (from, problem) => {
      this.#closeReason ??= `tls-framing-${from}`;
      this.#report.refused(`tls-framing-${from}`, { problem }, 'cut: not TLS');
      server.destroy();
      client.destroy();
    });
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort(SESSION_ENDED);
    clearTimeout(this.#timer);
    const reason = this.#closeReason ?? (this.#phase === 'Relaying' ? 'done' : 'client-closed');
    this.#report.closed(reason, this.counters.fromClient, this.counters.fromServer, this.#phase);
    this.#observer.closed(this);
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
