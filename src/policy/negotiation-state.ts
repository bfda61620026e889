import type { Refusal } from './refusals.js';
import type { RouteDecision, Route } from './routing.js';
import { PROCEED, streamErrorXml } from './serialize.js';
import { TlsRecordWalker, type RelayWalkers } from './tls-records.js';
import type { XmlEvent } from './xml-events.js';

export type Side = 'client' | 'server';

export type Phase =
  | 'AwaitClientHeader'
  | 'AwaitUpstream'
  | 'AwaitServerHeader'
  | 'AwaitServerFeatures'
  | 'AwaitStartTls'
  | 'AwaitProceed'
  | 'Relaying'
  | 'Refused'
  | 'Closed';

export interface NegotiationState {
  readonly phase: Phase;
  /** Whether the client has been sent a stream header, so an error needs none of its own. */
  readonly clientHasHeader: boolean;
  /** The client sent `<starttls/>`. */
  readonly startTlsRequested: boolean;
  /** `<starttls/>` went to the server: with our header when pipelining, else after its features. */
  readonly upstreamStartTls: boolean;
  /** The server said `<proceed/>` before the client asked: its walker waits for the relay. */
  readonly serverWalker?: TlsRecordWalker;
  readonly domain?: string;
  /** TLS records the client pipelined after `<starttls/>`: held until `<proceed/>`, never sent early. */
  readonly held: readonly Buffer[];
  readonly heldBytes: number;
  readonly clientWalker?: TlsRecordWalker;
}

export type NegotiationEvent =
  | { readonly type: 'xml'; readonly from: Side; readonly event: XmlEvent }
  /** Raw bytes that arrived after the side's TLS switch point and before the relay started. */
  | { readonly type: 'bytes'; readonly from: Side; readonly bytes: Buffer }
  | { readonly type: 'upstream-connected' }
  | { readonly type: 'upstream-failed'; readonly refusal: Refusal }
  | { readonly type: 'timeout'; readonly stage: 'header' | 'negotiation'; readonly seconds: number }
  | { readonly type: 'eof'; readonly from: Side };

export type Action =
  /**
   * Open the way to the server and send it `first` (our stream header, and `<starttls/>` when
   * pipelining): with `optimistic`, right behind the SOCKS request, before Tor's reply.
   */
  | { readonly type: 'connect'; readonly route: Route; readonly decision: Extract<RouteDecision, { ok: true }>; readonly first: string; readonly optimistic: boolean }
  | { readonly type: 'send'; readonly to: Side; readonly data: string }
  | { readonly type: 'start-relay'; readonly clientPreamble: Buffer; readonly walkers: RelayWalkers }
  | { readonly type: 'refuse'; readonly refusal: Refusal; readonly toClient: string }
  | { readonly type: 'close'; readonly reason: string; readonly toClient?: string };

export interface NegotiationContext {
  readonly decideRoute: (domain: string) => RouteDecision;
  /** Stream id for a header we write ourselves, when refusing before the server spoke. */
  readonly streamId: string;
  readonly maxHeldBytes: number;
}

export interface Step {
  readonly state: NegotiationState;
  readonly actions: readonly Action[];
}

export const INITIAL_STATE: NegotiationState = {
  phase: 'AwaitClientHeader',
  clientHasHeader: false,
  startTlsRequested: false,
  upstreamStartTls: false,
  held: [],
  heldBytes: 0,
};

/** The daemon's own stream ids (`xop-<connection>`), on the header it writes when it refuses before the server spoke. */
export const STREAM_ID_PREFIX = 'xop-';

export const TERMINAL: ReadonlySet<Phase> = new Set(['Relaying', 'Refused', 'Closed']);

/** RFC 5646 shape (language, then up to seven subtags): anything else in xml:lang is not forwarded. */
export const LANGUAGE_TAG = /^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8}){0,7}$/;

export function refuse(state: NegotiationState, ctx: NegotiationContext, refused: Refusal): Step {
  const toClient = streamErrorXml(refused, {
    withHeader: !state.clientHasHeader,
    ...(state.domain ? { from: state.domain } : {}),
    id: ctx.streamId,
  });
  return { state: { ...state, phase: 'Refused', held: [], heldBytes: 0 }, actions: [{ type: 'refuse', refusal: refused, toClient }] };
}

/**
 * Once both have spoken (the client's `<starttls/>`, the server's `<proceed/>`): the client
 * gets `<proceed/>` and the relay starts, the client's held TLS first.
 */
export function relayIfReady(state: NegotiationState): Step {
  if (!state.startTlsRequested || !state.serverWalker || TERMINAL.has(state.phase)) return { state, actions: [] };
  return {
    state: { ...state, phase: 'Relaying', held: [], heldBytes: 0 },
    actions: [
      { type: 'send', to: 'client', data: PROCEED },
      {
        type: 'start-relay',
        clientPreamble: Buffer.concat(state.held as Buffer[]),
        walkers: { client: state.clientWalker ?? new TlsRecordWalker('client', { afterXml: true }), server: state.serverWalker },
      },
    ],
  };
}
