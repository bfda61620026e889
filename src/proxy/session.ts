import type net from 'node:net';
import type { Logger } from 'pino';
import type { RouteDecision } from '../onionmap/route.js';
import type { Action, NegotiationEvent } from '../policy/negotiation.js';
import { Negotiator } from '../policy/negotiator.js';
import { refusal, type Refusal } from '../policy/refusal.js';
import type { TlsRecordWalker } from '../policy/tls-records.js';
import type { XmlLimits } from '../policy/xml-events.js';
import type { Endpoint } from './endpoint.js';
import { UpstreamError } from './errors.js';
import { startRelay, type RelayCounters } from './relay.js';
import { connectThroughTor } from './tor-connect.js';

export type Isolation = 'per-connection' | 'per-domain' | 'none';

export interface SessionOptions {
  readonly tor: Endpoint;
  readonly decideRoute: (domain: string) => RouteDecision;
  readonly isolationKey: (domain: string) => string | undefined;
  readonly xmlLimits: XmlLimits;
  readonly headerTimeoutMs: number;
  readonly negotiationTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** How long a refused client may take to read its stream error before the socket is destroyed. */
  readonly lingerMs: number;
}

/** What a session reports to its server, for counters and the control socket. */
export interface SessionObserver {
  closed(session: Session): void;
}

const MAX_HELD_TLS_BYTES = 32 * 1024;

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
  readonly #log: Logger;
  readonly #options: SessionOptions;
  readonly #observer: SessionObserver;

  constructor(id: number, client: net.Socket, options: SessionOptions, log: Logger, observer: SessionObserver) {
    this.id = id;
    this.#client = client;
    this.#options = options;
    this.#log = log;
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
    for (const action of actions) this.#execute(action);
  }

  #execute(action: Action): void {
    switch (action.type) {
      case 'connect':
        this.#log.info({ route: action.route.kind, why: action.decision.reason, status: action.decision.status }, 'routing');
        this.#log.debug({ domain: this.#domain, note: action.decision.note }, 'route detail');
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
        this.#log.info({ reason: action.reason }, 'closing before TLS');
        this.#endClient(action.toClient);
        return;
      case 'start-relay':
        this.#startRelay(action.clientPreamble, action.clientWalker);
        return;
    }
  }

  #connect(action: Extract<Action, { type: 'connect' }>): void {
    const started = Date.now();
    const domain = this.#domain ?? '';
    const isolationKey = this.#options.isolationKey(domain);
    connectThroughTor({
      tor: this.#options.tor,
      route: action.route,
      timeoutMs: this.#options.connectTimeoutMs,
      ...(isolationKey ? { isolationKey } : {}),
    }).then(
      (server) => {
        if (this.#closed || this.#phase !== 'AwaitUpstream') {
          server.destroy();
          return;
        }
        this.#log.info({ ms: Date.now() - started }, 'upstream connected');
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
        const upstream = error instanceof UpstreamError ? error : new UpstreamError('tor-error', 'the connection through Tor failed');
        const where = action.route.kind === 'onion' ? 'the onion service' : 'the server through a Tor exit';
        this.#dispatch({ type: 'upstream-failed', refusal: refusal(upstream.reason, 'remote-connection-failed',
          `could not reach ${where}: ${upstream.words}; nothing was sent`) });
      },
    );
  }

  #refuse(refused: Refusal, toClient: string): void {
    this.#closeReason ??= refused.code;
    this.#log.warn({ reason: refused.code, condition: refused.condition }, 'refused');
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
    this.#log.info({ held: clientPreamble.length }, 'TLS started');
    if (clientPreamble.length > 0) {
      this.counters.fromClient += clientPreamble.length;
      server.write(clientPreamble);
    }
    startRelay(client, server, clientWalker, this.counters, (from, problem) => {
      this.#closeReason ??= `tls-framing-${from}`;
      this.#log.warn({ reason: `tls-framing-${from}`, problem }, 'cut: not TLS');
      server.destroy();
      client.destroy();
    });
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#log.info({
      reason: this.#closeReason ?? (this.#phase === 'Relaying' ? 'done' : 'client-closed'),
      phase: this.#phase,
      fromClient: this.counters.fromClient,
      fromServer: this.counters.fromServer,
      ms: Date.now() - this.startedAt,
    }, 'closed');
    this.#observer.closed(this);
  }
}
