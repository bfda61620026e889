import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Refusal } from '../policy/refusals.js';
import type { Route, SocksMode } from '../policy/routing.js';

export const ACTIVITY_VERSION = 1;

export type DoorKind = 'connect-server' | 'socks';
export type ConnectionState = 'negotiating' | 'relaying' | 'closing';
export type RelayMode = SocksMode;

export interface ConnectionInfo {
  readonly id: number;
  readonly door: DoorKind;
  readonly startedAt: number;
  state: ConnectionState;
  route?: Route['kind'];
  mode?: RelayMode;
  /** The user's own data: only shown to a subscriber that asks for it. */
  domain?: string;
}

export type ActivityEvent =
  | { readonly type: 'accepted'; readonly id: number; readonly door: DoorKind }
  | { readonly type: 'routed'; readonly id: number; readonly route: Route['kind']; readonly mode: RelayMode; readonly domain?: string }
  | { readonly type: 'tls-started'; readonly id: number }
  | { readonly type: 'refused'; readonly id: number; readonly reason: string }
  | { readonly type: 'closed'; readonly id: number; readonly reason: string; readonly fromClient: number; readonly fromServer: number; readonly ms: number };

export interface ActivityCounters {
  accepted: number;
  refused: Record<string, number>;
  bytesFromClient: number;
  bytesFromServer: number;
}

/**
 * What the daemon is doing, for the control socket: live connections, counters, and an event
 * per lifecycle point. Listeners get events synchronously and must not block.
 */
export class Activity extends EventEmitter<{ event: [ActivityEvent] }> {
  readonly startedAt = Date.now();
  readonly counters: ActivityCounters = { accepted: 0, refused: {}, bytesFromClient: 0, bytesFromServer: 0 };
  readonly connections = new Map<number, ConnectionInfo>();

  get relaying(): number {
    let n = 0;
    for (const c of this.connections.values()) if (c.state === 'relaying') n++;
    return n;
  }

  /** `log` is the root logger: each line carries `conn`, without a child logger per connection. */
  report(id: number, door: DoorKind, log: Logger): ConnectionReport {
    return new ConnectionReport(this, { id, door, startedAt: Date.now(), state: 'negotiating' }, log);
  }

  emitEvent(event: ActivityEvent): void {
    if (this.listenerCount('event') > 0) this.emit('event', event);
  }
}

/**
 * One connection's lifecycle points, each logged once and counted once. At info level a
 * connection is one line, when it closes (the lifecycle lines are debug: logging is not free). Domains go only to the
 * debug log and to the live view (where they stay hidden unless a subscriber asks).
 */
export class ConnectionReport {
  readonly #activity: Activity;
  readonly #info: ConnectionInfo;
  readonly #log: Logger;
  #refusedAs: string | undefined;

  constructor(activity: Activity, info: ConnectionInfo, log: Logger) {
    this.#activity = activity;
    this.#info = info;
    this.#log = log;
  }

  get id(): number {
    return this.#info.id;
  }

  accepted(): void {
    this.#activity.counters.accepted++;
    this.#activity.connections.set(this.#info.id, this.#info);
    this.#log.debug({ conn: this.#info.id, door: this.#info.door }, 'accepted');
    this.#activity.emitEvent({ type: 'accepted', id: this.#info.id, door: this.#info.door });
  }

  routed(route: Route, mode: RelayMode, detail: Record<string, unknown>, domain: string | undefined, note?: string): void {
    this.#info.route = route.kind;
    this.#info.mode = mode;
    if (domain) this.#info.domain = domain;
    this.#log.debug({ conn: this.#info.id, route: route.kind, mode, ...detail }, 'routing');
    this.#log.debug({ conn: this.#info.id, domain, host: route.host, port: route.port, note }, 'route detail');
    this.#activity.emitEvent({ type: 'routed', id: this.#info.id, route: route.kind, mode, ...(domain ? { domain } : {}) });
  }

  upstreamConnected(ms: number): void {
    this.#log.debug({ conn: this.#info.id, ms }, 'upstream connected');
  }

  tlsStarted(held: number): void {
    this.#info.state = 'relaying';
    this.#log.debug({ conn: this.#info.id, held }, 'TLS started');
    this.#activity.emitEvent({ type: 'tls-started', id: this.#info.id });
  }

  /** A refusal before TLS, or a cut after it: its code and its log words (never a domain or an onion). */
  refused(refused: Refusal, message = 'refused'): void {
    if (this.#refusedAs !== undefined) return;
    const reason = refused.code;
    this.#refusedAs = reason;
    this.#info.state = 'closing';
    const counts = this.#activity.counters.refused;
    counts[reason] = (counts[reason] ?? 0) + 1;
    this.#log.warn({ conn: this.#info.id, reason, condition: refused.condition, problem: refused.log }, message);
    this.#activity.emitEvent({ type: 'refused', id: this.#info.id, reason });
  }

  closed(reason: string, fromClient: number, fromServer: number, phase: string): void {
    const ms = Date.now() - this.#info.startedAt;
    const counters = this.#activity.counters;
    counters.bytesFromClient += fromClient;
    counters.bytesFromServer += fromServer;
    this.#activity.connections.delete(this.#info.id);
    const { id, door, route, mode } = this.#info;
    this.#log.info({ conn: id, door, route, mode, reason, phase, fromClient, fromServer, ms }, 'closed');
    this.#activity.emitEvent({ type: 'closed', id: this.#info.id, reason, fromClient, fromServer, ms });
  }
}
