import type { ActivityEvent, ConnectionState, DoorKind, RelayMode } from '../proxy/activity.js';
import type { Route } from '../policy/routing.js';

/**
 * The control socket's messages: JSON text frames, each with a `type` and the protocol `version`.
 * Every field is listed here on purpose: nothing from the traffic (stanzas, JIDs, credentials)
 * has a field to travel in, and the domain only when the client asked for it.
 */
export const CONTROL_VERSION = 1;

export type RouteKind = Route['kind'];

export interface ConnectionEntry {
  readonly id: number;
  readonly door: DoorKind;
  readonly route?: RouteKind;
  readonly mode?: RelayMode;
  readonly state: ConnectionState;
  readonly ageMs: number;
  /** Only for a client that asked with `domains: true`. */
  readonly domain?: string;
}

export interface RecentRefusal {
  readonly at: number;
  readonly id: number;
  readonly reason: string;
}

export interface ClientStats {
  readonly client: number;
  readonly subscribed: boolean;
  /** Bytes written to this client that it has not read yet. */
  readonly buffered: number;
  readonly peakBuffered: number;
  /** Messages not sent to it because it was not reading. */
  readonly dropped: number;
}

export interface TorStatus {
  readonly endpoint: string;
  readonly reachable: boolean;
  readonly problem?: string;
  readonly checkedAt: number;
}

export interface SnapshotMessage {
  readonly type: 'snapshot';
  readonly version: typeof CONTROL_VERSION;
  readonly at: number;
  readonly daemon: { readonly version: string; readonly pid: number; readonly uptimeMs: number; readonly rssBytes: number };
  readonly tor: TorStatus;
  readonly map: { readonly generation: number; readonly entries: number };
  readonly doors: ReadonlyArray<{ readonly door: DoorKind; readonly host: string; readonly port: number }>;
  readonly counters: {
    readonly accepted: number;
    readonly open: number;
    readonly relaying: number;
    readonly refused: Readonly<Record<string, number>>;
    readonly refusedTotal: number;
    /** Counted when a connection closes. */
    readonly bytesFromClient: number;
    readonly bytesFromServer: number;
  };
  readonly connections: readonly ConnectionEntry[];
  /** Open connections left out of `connections` (the list is capped). */
  readonly connectionsOmitted: number;
  readonly recentRefusals: readonly RecentRefusal[];
  readonly control: { readonly path: string; readonly maxClients: number; readonly clients: readonly ClientStats[] };
  /** The client this snapshot was sent to. */
  readonly you: { readonly client: number; readonly subscribed: boolean; readonly domains: boolean; readonly dropped: number };
}

type Flat<E> = E extends ActivityEvent ? Omit<E, 'type'> & { readonly event: E['type'] } : never;

export type EventMessage = Flat<ActivityEvent> & { readonly type: 'event'; readonly version: typeof CONTROL_VERSION; readonly at: number };

export type ReloadOutcome =
  | { readonly ok: true; readonly generation: number; readonly entries: number; readonly layers: readonly string[] }
  | { readonly ok: false; readonly generation: number; readonly entries: number; readonly error: { readonly code: string; readonly message: string } };

/** What a reload that threw tells a control client: our code and message, never a third-party error's fields. */
export function reloadFailure(error: unknown, generation: number, entries: number): ReloadOutcome {
  const code = (error as { code?: unknown } | undefined)?.code;
  return {
    ok: false,
    generation,
    entries,
    error: { code: typeof code === 'string' ? code : 'XOP_ERR_RELOAD', message: error instanceof Error ? error.message : String(error) },
  };
}

export type ReloadMessage = ReloadOutcome & { readonly type: 'reload'; readonly version: typeof CONTROL_VERSION };

export type ErrorCode = 'bad-request' | 'unsupported-version' | 'unknown-type';

export interface ErrorMessage {
  readonly type: 'error';
  readonly version: typeof CONTROL_VERSION;
  readonly code: ErrorCode;
  readonly message: string;
  readonly supportedVersions: readonly number[];
}

export type ServerMessage = SnapshotMessage | EventMessage | ReloadMessage | ErrorMessage;

export type Request =
  | { readonly type: 'snapshot'; readonly domains: boolean }
  | { readonly type: 'subscribe'; readonly domains: boolean }
  | { readonly type: 'unsubscribe' }
  | { readonly type: 'reload' };

/** WebSocket close codes the daemon uses, with RFC 6455 §7.4.1 meanings. */
export const CLOSE = {
  goingAway: 1001,
  unsupportedData: 1003,
  policyViolation: 1008,
  tooBig: 1009,
  tryAgainLater: 1013,
} as const;

/** Parses one text frame from a client; an error message to send back when it is not a request. */
export function parseRequest(text: string): Request | { readonly problem: ErrorCode; readonly message: string } {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return { problem: 'bad-request', message: 'not JSON' };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { problem: 'bad-request', message: 'expected a JSON object' };
  const { type, version, domains } = data as Record<string, unknown>;
  if (version !== CONTROL_VERSION) return { problem: 'unsupported-version', message: `"version" must be ${CONTROL_VERSION}` };
  if (domains !== undefined && typeof domains !== 'boolean') return { problem: 'bad-request', message: '"domains" must be true or false' };
  switch (type) {
    case 'snapshot':
    case 'subscribe':
      return { type, domains: domains === true };
    case 'unsubscribe':
    case 'reload':
      return { type };
    default:
      return { problem: 'unknown-type', message: 'expected "type": snapshot, subscribe, unsubscribe or reload' };
  }
}

export function errorMessage(code: ErrorCode, message: string): ErrorMessage {
  return { type: 'error', version: CONTROL_VERSION, code, message, supportedVersions: [CONTROL_VERSION] };
}

/**
 * An activity event as sent: each kind's fields picked by name (a field added to ActivityEvent
 * later does not leak through by accident), the domain only when asked for.
 */
export function eventMessage(event: ActivityEvent, at: number, domains: boolean): EventMessage {
  const head = { type: 'event', version: CONTROL_VERSION, at } as const;
  switch (event.type) {
    case 'accepted':
      return { ...head, event: 'accepted', id: event.id, door: event.door };
    case 'routed':
      return { ...head, event: 'routed', id: event.id, route: event.route, mode: event.mode, ...(domains && event.domain !== undefined ? { domain: event.domain } : {}) };
    case 'tls-started':
      return { ...head, event: 'tls-started', id: event.id };
    case 'refused':
      return { ...head, event: 'refused', id: event.id, reason: event.reason };
    case 'closed':
      return { ...head, event: 'closed', id: event.id, reason: event.reason, fromClient: event.fromClient, fromServer: event.fromServer, ms: event.ms };
  }
}
