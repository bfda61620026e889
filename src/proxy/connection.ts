import type net from 'node:net';
import { refusal, type Refusal } from '../policy/refusals.js';
import type { RelayWalkers } from '../policy/tls-records.js';
import type { ConnectionReport } from './activity.js';
import { startRelay, type RelayCounters } from './relay.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- node's EventEmitter takes any listener
type Listener = (...args: any[]) => void;

/** One reason for every ended connection: `abort()` without one builds an error with a stack each time. */
const CONNECTION_ENDED = new Error('connection ended');

export interface ConnectionHooks {
  /** Once, when the connection has closed. */
  readonly closed: (connection: Connection) => void;
  /** Once, when it stops negotiating: it relays, or it ends. */
  readonly settled?: (connection: Connection) => void;
}

/**
 * The life of one client connection, at either door, from accept to close: the client socket,
 * the upstream once there is one, one timer, and the first reason the connection ended. Whatever
 * drives it (the STARTTLS session, the SOCKS handshake, a relay) registers its listeners here,
 * and ends it here:
 * - `refuse`: the refusal is counted and logged, the upstream dropped, the client gets its last
 *   words, then a FIN, and is read (and what it sends discarded) until it closes or the linger
 *   runs out. Nothing that happens upstream afterwards can cut the client short.
 * - `close`: the same without a refusal (the client closed its stream, a server's error passed on).
 * - `relay`: TLS records both ways with backpressure, cut on the first byte that is not TLS.
 * - `destroy`: at once (shutdown, a relay whose peer broke).
 */
export class Connection {
  readonly id: number;
  readonly client: net.Socket;
  readonly report: ConnectionReport;
  readonly counters: RelayCounters = { fromClient: 0, fromServer: 0 };
  /** Where the connection was when it ended, for the closing log line. */
  phase = 'accepted';
  #upstream: net.Socket | undefined;
  #state: 'open' | 'relaying' | 'ending' | 'closed' = 'open';
  #reason: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #abort: AbortController | undefined;
  #listeners: Array<readonly [net.Socket, string, Listener]> = [];
  #upstreamLost: (() => void) | undefined;
  readonly #lingerMs: number;
  readonly #hooks: ConnectionHooks;

  constructor(id: number, client: net.Socket, report: ConnectionReport, lingerMs: number, hooks: ConnectionHooks) {
    this.id = id;
    this.client = client;
    this.report = report;
    this.#lingerMs = lingerMs;
    this.#hooks = hooks;
    client.on('error', this.#onClientError);
    client.on('close', this.#onClientClose);
  }

  /** Aborted as soon as the connection ends, so a connect through Tor still under way lets go at once. */
  get signal(): AbortSignal {
    this.#abort ??= new AbortController();
    return this.#abort.signal;
  }

  /** True once the connection is ending or closed: nothing more may be sent or decided. */
  get ended(): boolean {
    return this.#state === 'ending' || this.#state === 'closed';
  }

  get upstream(): net.Socket | undefined {
    return this.#upstream;
  }

  /** A listener this lifecycle removes when the connection ends or starts relaying. */
  listen(socket: net.Socket, event: 'data', listener: (chunk: Buffer) => void): void;
  listen(socket: net.Socket, event: 'end', listener: () => void): void;
  listen(socket: net.Socket, event: 'data' | 'end', listener: Listener): void {
    socket.on(event, listener);
    this.#listeners.push([socket, event, listener]);
  }

  /** The connection's one timer (handshake, header, negotiation): re-arming replaces it. */
  arm(ms: number, fire: () => void): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(fire, ms);
    this.#timer.unref();
  }

  disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Takes the upstream, handed over paused so that none of its bytes is lost before a reader is
   * registered (the reader resumes it). `lost` runs if it breaks or closes before relaying and
   * before the connection ends. False when the connection has already ended: the socket is dropped.
   */
  useUpstream(socket: net.Socket, lost: () => void): boolean {
    this.#upstreamLost = lost;
    if (this.#upstream === socket) return true;
    if (this.ended) {
      socket.destroy();
      return false;
    }
    this.#upstream = socket;
    socket.on('error', this.#onUpstreamError);
    socket.on('close', this.#onUpstreamClose);
    return true;
  }

  refuse(refused: Refusal, last?: string | Buffer): void {
    if (this.ended) return;
    this.#reason ??= refused.code;
    this.report.refused(refused);
    // Inside TLS no words can be read any more: a refusal there is a cut.
    if (this.#state === 'relaying') return this.destroy(refused.code);
    this.#upstream?.destroy();
    this.#endClient(last);
  }

  /** Bytes that are not TLS where TLS must be: both sides are cut at once, nothing of it passed on. */
  cut(from: 'client' | 'server', problem: string, hello = false): void {
    if (this.ended) return;
    const code = hello
      ? (from === 'client' ? 'tls-no-client-hello' : 'tls-no-server-hello')
      : (from === 'client' ? 'tls-framing-client' : 'tls-framing-server');
    const cut = refusal(code, { problem });
    this.#reason ??= cut.code;
    this.report.refused(cut, 'cut: not TLS');
    this.destroy(cut.code);
  }

  close(reason: string, last?: string | Buffer): void {
    if (this.ended) return;
    this.#reason ??= reason;
    this.#upstream?.end();
    this.#endClient(last);
  }

  /** At once; with a refusal (a flood, say), it is counted and logged first. */
  destroy(reason: string | Refusal): void {
    if (typeof reason !== 'string' && !this.ended) this.report.refused(reason);
    this.#reason ??= typeof reason === 'string' ? reason : reason.code;
    this.#stop();
    this.#upstream?.destroy();
    this.client.destroy();
  }

  /**
   * From here on, bytes pass untouched both ways with backpressure; with walkers, every record
   * header is checked and the first byte that is not TLS cuts both sides. `preamble` is what the
   * client sent ahead (already checked), written first.
   */
  relay(preamble: Buffer, walkers: RelayWalkers | undefined): void {
    const server = this.#upstream;
    if (!server || this.ended) return;
    this.#settle('relaying');
    this.disarm();
    this.detach();
    // What only setting up needed goes, so that an idle relayed connection holds no more than it must:
    // the session behind `lost` (its negotiator and readers), and the Tor connect's abort controller.
    this.#upstreamLost = undefined;
    this.#abort = undefined;
    this.report.tlsStarted(preamble.length);
    if (preamble.length > 0) {
      this.counters.fromClient += preamble.length;
      server.write(preamble);
    }
    startRelay(this.client, server, walkers, this.counters, (from, problem, hello) => this.cut(from, problem, hello));
    this.client.resume();
    server.resume();
  }

  /** The last words, a FIN, then a bounded wait for the client to close, discarding what it still sends. */
  #endClient(last: string | Buffer | undefined): void {
    this.#stop();
    const client = this.client;
    client.on('data', discard);
    client.on('end', destroyOnEnd);
    client.resume();
    if (last === undefined) client.end();
    else client.end(last);
    this.#timer = setTimeout(() => client.destroy(), this.#lingerMs);
    this.#timer.unref();
  }

  #stop(): void {
    if (this.#state !== 'closed') this.#settle('ending');
    this.disarm();
    this.detach();
    this.#abort?.abort(CONNECTION_ENDED);
  }

  /** Removes every listener registered so far: the next phase registers its own. */
  detach(): void {
    for (const [socket, event, listener] of this.#listeners) socket.removeListener(event, listener);
    this.#listeners = [];
  }

  #onClientError = (error: NodeJS.ErrnoException): void => {
    this.#reason ??= `client-${error.code ?? 'error'}`;
    this.#upstream?.destroy();
  };

  #onClientClose = (): void => {
    const relayed = this.#state === 'relaying';
    this.#settle('closed');
    this.disarm();
    this.#abort?.abort(CONNECTION_ENDED);
    this.#upstream?.destroy();
    this.report.closed(this.#reason ?? (relayed ? 'done' : 'client-closed'), this.counters.fromClient, this.counters.fromServer, this.phase);
    this.#hooks.closed(this);
  };

  #settle(state: 'relaying' | 'ending' | 'closed'): void {
    const wasOpen = this.#state === 'open';
    this.#state = state;
    if (wasOpen) this.#hooks.settled?.(this);
  }

  #onUpstreamError = (error: NodeJS.ErrnoException): void => {
    if (this.#state === 'relaying') this.destroy(`server-${error.code ?? 'error'}`);
    else if (this.#state === 'open') this.#upstreamLost?.();
  };

  #onUpstreamClose = (): void => {
    if (this.#state === 'open') this.#upstreamLost?.();
  };
}

function discard(): void {}

function destroyOnEnd(this: net.Socket): void {
  this.destroy();
}
