import { normalizeDomain } from '../onionmap/domain.js';
import type { Route, RouteDecision } from '../onionmap/route.js';
import { refusal, streamErrorXml, type Refusal } from './refusal.js';
import {
  FEATURES_STARTTLS_REQUIRED,
  PROCEED,
  STARTTLS,
  STREAM_CLOSE,
  streamErrorElement,
  streamHeader,
  XML_DECLARATION,
} from './serialize.js';
import { TlsRecordWalker } from './tls-records.js';
import { child, is, NS, type XmlElement } from './xml-element.js';
import type { XmlEvent, XmlViolation } from './xml-events.js';

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
  readonly startTlsRequested: boolean;
  readonly domain?: string;
  readonly upstreamHeader?: string;
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
  | { readonly type: 'connect'; readonly route: Route; readonly decision: Extract<RouteDecision, { ok: true }> }
  | { readonly type: 'send'; readonly to: Side; readonly data: string }
  | { readonly type: 'start-relay'; readonly clientPreamble: Buffer; readonly clientWalker: TlsRecordWalker }
  | { readonly type: 'refuse'; readonly refusal: Refusal; readonly toClient: string }
  | { readonly type: 'close'; readonly reason: string; readonly toClient?: string };

/** A route for the stream, or a refusal in the daemon's words (e.g. the SOCKS door's `to` check). */
export type StreamRouteDecision = Extract<RouteDecision, { ok: true }> | { readonly ok: false; readonly refusal: Refusal };

/** The connect-server door: the onion map's decision, its refusals as stream errors. */
export function streamRoute(decision: RouteDecision): StreamRouteDecision {
  if (decision.ok) return decision;
  const condition = decision.code === 'retired' ? 'host-gone' : decision.code === 'onion-only' ? 'policy-violation' : 'host-unknown';
  return { ok: false, refusal: refusal(`route-${decision.code}`, condition, decision.text) };
}

export interface NegotiationContext {
  readonly decideRoute: (domain: string) => StreamRouteDecision;
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
  held: [],
  heldBytes: 0,
};

const TERMINAL: ReadonlySet<Phase> = new Set(['Relaying', 'Refused', 'Closed']);
const CLIENT_HEADER_ATTRS = ['to', 'version', 'xml:lang'] as const;
/** RFC 5646 shape (language, then up to seven subtags): anything else in xml:lang is not forwarded. */
const LANGUAGE_TAG = /^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8}){0,7}$/;
const SERVER_HEADER_ATTRS = ['from', 'id', 'version', 'xml:lang'] as const;

/**
 * The STARTTLS policy: events from both sides in, decisions out, no I/O.
 * Before TLS only the negotiation passes (RFC 6120 §5.4.2), re-serialised by us; everything
 * else ends the connection with a stream error that says why. Terminal phases are sticky.
 */
export function step(state: NegotiationState, event: NegotiationEvent, ctx: NegotiationContext): Step {
  if (TERMINAL.has(state.phase)) return { state, actions: [] };
  switch (event.type) {
    case 'xml':
      return event.from === 'client' ? onClientXml(state, event.event, ctx) : onServerXml(state, event.event, ctx);
    case 'bytes':
      return event.from === 'client'
        ? onClientTlsBytes(state, event.bytes, ctx)
        : refuse(state, ctx, serverDataAfterProceed());
    case 'upstream-connected':
      if (state.phase !== 'AwaitUpstream' || !state.upstreamHeader) return { state, actions: [] };
      return {
        state: { ...state, phase: 'AwaitServerHeader' },
        actions: [{ type: 'send', to: 'server', data: state.upstreamHeader }],
      };
    case 'upstream-failed':
      return refuse(state, ctx, event.refusal);
    case 'timeout':
      return refuse(state, ctx, event.stage === 'header'
        ? refusal('header-timeout', 'connection-timeout', `your client did not send its stream header within ${seconds(event.seconds)}`)
        : refusal('negotiation-timeout', 'connection-timeout', `encryption was not set up within ${seconds(event.seconds)}; closing the connection`));
    case 'eof':
      if (event.from === 'client') return { state: { ...state, phase: 'Closed' }, actions: [{ type: 'close', reason: 'client-closed' }] };
      return refuse(state, ctx, refusal('server-closed', 'remote-connection-failed',
        'the server closed the connection before encryption was set up'));
  }
}

function seconds(n: number): string {
  return n === 1 ? '1 second' : `${n} seconds`;
}

function refuse(state: NegotiationState, ctx: NegotiationContext, refused: Refusal): Step {
  const toClient = streamErrorXml(refused, {
    withHeader: !state.clientHasHeader,
    ...(state.domain ? { from: state.domain } : {}),
    id: ctx.streamId,
  });
  return { state: { ...state, phase: 'Refused', held: [], heldBytes: 0 }, actions: [{ type: 'refuse', refusal: refused, toClient }] };
}

// ---- client ----------------------------------------------------------------------------

function onClientXml(state: NegotiationState, event: XmlEvent, ctx: NegotiationContext): Step {
  switch (event.kind) {
    case 'violation':
      return refuse(state, ctx, violationRefusal('client', event.violation));
    case 'header':
      return onClientHeader(state, event.header, ctx);
    case 'end':
      return {
        state: { ...state, phase: 'Closed' },
        actions: [{ type: 'close', reason: 'client-closed', ...(state.clientHasHeader ? { toClient: STREAM_CLOSE } : {}) }],
      };
    case 'element': {
      const next = onClientElement(state, event.element, ctx);
      if (!event.trailing || event.trailing.length === 0) return next;
      const after = onClientTlsBytes(next.state, event.trailing, ctx);
      // Injected plaintext refuses the whole write: not even its <starttls/> is passed on.
      if (after.state.phase === 'Refused') return after;
      return { state: after.state, actions: [...next.actions, ...after.actions] };
    }
  }
}

/** RFC 6120 §4.7: the client's stream header selects the server; its `from` (the JID) is dropped. */
function onClientHeader(state: NegotiationState, header: XmlElement, ctx: NegotiationContext): Step {
  if (!is(header, NS.streams, 'stream') || header.defaultNs !== NS.client) {
    return refuse(state, ctx, refusal('client-bad-namespace', 'invalid-namespace',
      'your client did not open an XMPP client stream (<stream:stream> in jabber:client)'));
  }
  if (!/^1\.\d+$/.test(header.attrs.version ?? '')) {
    return refuse(state, ctx, refusal('client-unsupported-version', 'unsupported-version',
      "your client did not ask for an XMPP 1.0 stream (version='1.0'), which STARTTLS needs"));
  }
  const to = header.attrs.to;
  if (to === undefined) {
    return refuse(state, ctx, refusal('client-no-domain', 'host-unknown',
      "your client did not say which server it wants (no 'to' in the stream header)"));
  }
  const domain = normalizeDomain(to);
  if (!domain.ok) {
    return refuse(state, ctx, refusal('client-bad-domain', 'host-unknown',
      `the server name your client asked for cannot be used: ${domain.problem}`));
  }
  const withDomain = { ...state, domain: domain.domain };
  const decision = ctx.decideRoute(domain.domain);
  if (!decision.ok) return refuse(withDomain, ctx, decision.refusal);
  // Only what the policy vouches for leaves in clear: the normalised domain, version 1.0 (the
  // client restarts its own stream inside TLS, RFC 6120 §5.4.3.3) and a well-formed language tag.
  const lang = header.attrs['xml:lang'];
  const upstreamHeader = XML_DECLARATION + streamHeader({
    to: domain.domain,
    version: '1.0',
    ...(lang !== undefined && LANGUAGE_TAG.test(lang) ? { 'xml:lang': lang } : {}),
  }, CLIENT_HEADER_ATTRS);
  return {
    state: { ...withDomain, phase: 'AwaitUpstream', upstreamHeader },
    actions: [{ type: 'connect', route: decision.route, decision }],
  };
}

function onClientElement(state: NegotiationState, element: XmlElement, ctx: NegotiationContext): Step {
  if (!is(element, NS.tls, 'starttls')) return refuse(state, ctx, clientElementRefusal(element));
  if (state.startTlsRequested) {
    return refuse(state, ctx, refusal('client-unexpected-element', 'policy-violation', 'your client sent <starttls/> twice'));
  }
  const requested = { ...state, startTlsRequested: true, clientWalker: new TlsRecordWalker() };
  if (state.phase !== 'AwaitStartTls') return { state: requested, actions: [] };
  return { state: { ...requested, phase: 'AwaitProceed' }, actions: [{ type: 'send', to: 'server', data: STARTTLS }] };
}

const NOTHING_SENT = 'nothing was sent to the server';

function clientElementRefusal(element: XmlElement): Refusal {
  if (is(element, NS.sasl, 'auth')) {
    return refusal('client-plaintext-auth', 'policy-violation',
      `your client tried to log in (<auth>) before encryption was set up; ${NOTHING_SENT}. Set the account to require encryption`);
  }
  if (is(element, NS.client, 'iq') && child(element, NS.register, 'query')) {
    return refusal('client-plaintext-register', 'policy-violation',
      `your client tried to register an account before encryption was set up; ${NOTHING_SENT}`);
  }
  if (element.uri === NS.client && ['iq', 'message', 'presence'].includes(element.local)) {
    return refusal('client-stanza-before-tls', 'policy-violation',
      `your client sent a <${element.local}> stanza before encryption was set up; ${NOTHING_SENT}`);
  }
  if (element.uri === NS.compress) {
    return refusal('client-compress-before-tls', 'policy-violation',
      `your client asked for compression before encryption was set up; ${NOTHING_SENT}`);
  }
  return refusal('client-unexpected-element', 'policy-violation',
    `your client sent <${element.local.slice(0, 40)}> where only <starttls/> is allowed before encryption; ${NOTHING_SENT}`);
}

/**
 * After `<starttls/>` the client may pipeline its TLS ClientHello (XEP-0305 style): TLS records
 * are held until the server's `<proceed/>`; anything else is command injection (CVE-2011-0411 class).
 */
function onClientTlsBytes(state: NegotiationState, received: Buffer, ctx: NegotiationContext): Step {
  if (TERMINAL.has(state.phase)) return { state, actions: [] };
  // Whitespace right after <starttls/> is still XML (go-sendxmpp sends a newline): dropped, never forwarded.
  const bytes = state.heldBytes === 0 ? afterXmlWhitespace(received) : received;
  if (bytes.length === 0) return { state, actions: [] };
  const walker = state.clientWalker;
  const problem = walker ? walker.check(bytes) : 'no <starttls/> before it';
  if (problem) {
    return refuse(state, ctx, refusal('client-data-after-starttls', 'policy-violation',
      `your client sent data after <starttls/> that is not TLS (${problem}); ${NOTHING_SENT}`));
  }
  const heldBytes = state.heldBytes + bytes.length;
  if (heldBytes > ctx.maxHeldBytes) {
    return refuse(state, ctx, refusal('client-limit', 'policy-violation',
      `your client sent more than ${ctx.maxHeldBytes} bytes of TLS before the server accepted STARTTLS`));
  }
  return { state: { ...state, held: [...state.held, bytes], heldBytes }, actions: [] };
}

// ---- server ----------------------------------------------------------------------------

function onServerXml(state: NegotiationState, event: XmlEvent, ctx: NegotiationContext): Step {
  switch (event.kind) {
    case 'violation':
      return refuse(state, ctx, violationRefusal('server', event.violation));
    case 'header':
      return onServerHeader(state, event.header, ctx);
    case 'end':
      return refuse(state, ctx, refusal('server-closed', 'remote-connection-failed',
        'the server closed the stream before encryption was set up'));
    case 'element':
      return onServerElement(state, event.element, event.trailing, ctx);
  }
}

function onServerHeader(state: NegotiationState, header: XmlElement, ctx: NegotiationContext): Step {
  if (!is(header, NS.streams, 'stream') || header.defaultNs !== NS.client) {
    return refuse(state, ctx, refusal('server-bad-namespace', 'invalid-namespace',
      'the server did not answer with an XMPP client stream'));
  }
  if (!/^1\.\d+$/.test(header.attrs.version ?? '')) {
    return refuse(state, ctx, refusal('server-unsupported-version', 'unsupported-version',
      `server ${state.domain} answered with a pre-1.0 XMPP stream, which cannot use STARTTLS; refusing to continue without encryption`));
  }
  return {
    state: { ...state, phase: 'AwaitServerFeatures', clientHasHeader: true },
    actions: [{ type: 'send', to: 'client', data: XML_DECLARATION + streamHeader(header.attrs, SERVER_HEADER_ATTRS) }],
  };
}

function onServerElement(state: NegotiationState, element: XmlElement, trailing: Buffer | undefined, ctx: NegotiationContext): Step {
  if (is(element, NS.streams, 'error')) return onServerStreamError(state, element, ctx);
  switch (state.phase) {
    case 'AwaitServerFeatures':
      if (!is(element, NS.streams, 'features')) break;
      if (!child(element, NS.tls, 'starttls')) {
        return refuse(state, ctx, refusal('server-no-starttls', 'policy-violation',
          `server ${state.domain} did not offer STARTTLS; refusing to continue without encryption (nothing was sent to it)`));
      }
      if (state.startTlsRequested) {
        return {
          state: { ...state, phase: 'AwaitProceed' },
          actions: [
            { type: 'send', to: 'client', data: FEATURES_STARTTLS_REQUIRED },
            { type: 'send', to: 'server', data: STARTTLS },
          ],
        };
      }
      return { state: { ...state, phase: 'AwaitStartTls' }, actions: [{ type: 'send', to: 'client', data: FEATURES_STARTTLS_REQUIRED }] };
    case 'AwaitProceed':
      if (is(element, NS.tls, 'failure')) {
        return refuse(state, ctx, refusal('server-starttls-failure', 'policy-violation',
          `server ${state.domain} refused to start TLS (<failure/>); closing rather than continuing without encryption`));
      }
      if (!is(element, NS.tls, 'proceed')) break;
      if (trailing && afterXmlWhitespace(trailing).length > 0) return refuse(state, ctx, serverDataAfterProceed());
      return {
        state: { ...state, phase: 'Relaying', held: [], heldBytes: 0 },
        actions: [
          { type: 'send', to: 'client', data: PROCEED },
          { type: 'start-relay', clientPreamble: Buffer.concat(state.held as Buffer[]), clientWalker: state.clientWalker ?? new TlsRecordWalker() },
        ],
      };
    default:
      break;
  }
  return refuse(state, ctx, refusal('server-unexpected-element', 'policy-violation',
    `server ${state.domain} sent <${element.local.slice(0, 40)}> ${expectation(state.phase)}; refusing to continue without encryption`));
}

/** RFC 6120 §4.9.3: the defined stream error conditions, the only ones passed on by name. */
const STREAM_CONDITIONS: ReadonlySet<string> = new Set([
  'bad-format', 'bad-namespace-prefix', 'conflict', 'connection-timeout', 'host-gone', 'host-unknown', 'improper-addressing',
  'internal-server-error', 'invalid-from', 'invalid-namespace', 'invalid-xml', 'not-authorized', 'not-well-formed', 'policy-violation',
  'remote-connection-failed', 'reset', 'resource-constraint', 'restricted-xml', 'system-shutdown', 'undefined-condition',
  'unsupported-encoding', 'unsupported-feature', 'unsupported-stanza-type', 'unsupported-version',
]);

/**
 * A server's stream error before TLS comes from an unauthenticated peer: only its condition and
 * its text reach the client, re-written by us. `see-other-host` (§4.9.3.19) is not passed on:
 * a client that follows it would connect to a host of the attacker's choosing, around Tor.
 */
function onServerStreamError(state: NegotiationState, element: XmlElement, ctx: NegotiationContext): Step {
  const condition = element.children.find((c) => c.uri === NS.streamErrors && c.local !== 'text');
  if (condition?.local === 'see-other-host') {
    return refuse(state, ctx, refusal('server-see-other-host', 'policy-violation',
      `server ${state.domain} told your client to connect to another host (see-other-host) before encryption was set up; ` +
      'the proxy does not pass that on, since following it could leave Tor'));
  }
  const name = condition && STREAM_CONDITIONS.has(condition.local) ? condition.local : 'undefined-condition';
  const text = child(element, NS.streamErrors, 'text');
  const lang = text?.attrs['xml:lang'];
  const words = text && text.text !== '' ? { text: text.text, ...(lang !== undefined && LANGUAGE_TAG.test(lang) ? { lang } : {}) } : undefined;
  return {
    state: { ...state, phase: 'Closed' },
    actions: [{ type: 'close', reason: 'server-stream-error', toClient: streamErrorElement(name, words) + STREAM_CLOSE }],
  };
}

function expectation(phase: Phase): string {
  switch (phase) {
    case 'AwaitServerFeatures':
      return 'instead of its stream features';
    case 'AwaitProceed':
      return 'instead of <proceed/> in answer to <starttls/>';
    default:
      return 'before encryption was set up';
  }
}

/** RFC 6120 §11.7 allows whitespace between elements; none of it is TLS. */
function afterXmlWhitespace(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  return i === 0 ? bytes : bytes.subarray(i);
}

function serverDataAfterProceed(): Refusal {
  return refusal('server-data-after-proceed', 'policy-violation',
    'the server (or someone on the path) sent unencrypted data right after <proceed/>; it was not passed on');
}

/** An XML violation from either side: its condition (RFC 6120 §4.9.3), a code naming the side, and words. */
function violationRefusal(side: Side, violation: XmlViolation): Refusal {
  const words = violationWords(violation);
  const text = side === 'client'
    ? `your client sent ${words} before encryption was set up; ${NOTHING_SENT}`
    : `the server sent ${words} before encryption was set up; nothing of it was passed on`;
  const condition = violation.kind === 'limit' ? 'policy-violation' : violation.kind;
  return refusal(`${side}-${violation.kind}`, condition, text);
}

function violationWords(violation: XmlViolation): string {
  switch (violation.kind) {
    case 'not-well-formed':
      return `XML that is not well-formed (${violation.detail})`;
    case 'restricted-xml':
      return `XML that XMPP forbids: ${violation.detail}`;
    case 'bad-format':
      return `badly formatted XML (${violation.detail})`;
    case 'limit':
      return `too much: ${violation.detail}`;
  }
}
