import { normalizeDomain } from '../onionmap/domain.js';
import { LANGUAGE_TAG, refuse, relayIfReady, TERMINAL, type NegotiationContext, type NegotiationState, type Step } from './negotiation-state.js';
import { refusal, type Refusal } from './refusals.js';
import { STARTTLS, STREAM_CLOSE, streamHeader, XML_DECLARATION } from './serialize.js';
import { TlsRecordWalker } from './tls-records.js';
import { violationRefusal } from './violations.js';
import { child, is, NS, type XmlElement } from './xml-element.js';
import type { XmlEvent, XmlReading } from './xml-events.js';

const UPSTREAM_HEADER_ATTRS = ['to', 'version', 'xml:lang'] as const;

const isStartTls = (element: XmlElement): boolean => is(element, NS.tls, 'starttls');
const isIq = (element: XmlElement): boolean => is(element, NS.client, 'iq');

/**
 * How the client's bytes are read: up to `<starttls/>` and no further; any other element is
 * decided on at its start tag (an `<iq>` at its first child, which tells registration apart),
 * so nothing the policy refuses is ever held in memory.
 */
export const CLIENT_READING: XmlReading = {
  stopAfter: isStartTls,
  decideAtStart: (top, depth) => (depth === 1 ? !isStartTls(top) && !isIq(top) : isIq(top)),
  keep: (parent, _uri, _local, depth) => depth === 2 && isIq(parent),
};

/** The client's side before TLS: its stream header, `<starttls/>`, and nothing else (RFC 6120 §5.4.2). */
export function onClientXml(state: NegotiationState, event: XmlEvent, ctx: NegotiationContext): Step {
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
      if (TERMINAL.has(next.state.phase)) return next;
      const after = event.trailing && event.trailing.length > 0 ? onClientTlsBytes(next.state, event.trailing, ctx) : { state: next.state, actions: [] };
      // Injected plaintext refuses the whole write: not even its <starttls/> is passed on.
      if (after.state.phase === 'Refused') return after;
      const ready = relayIfReady(after.state);
      return { state: ready.state, actions: [...next.actions, ...after.actions, ...ready.actions] };
    }
  }
}

/** RFC 6120 §4.7: the client's stream header selects the server; its `from` (the JID) is dropped. */
function onClientHeader(state: NegotiationState, header: XmlElement, ctx: NegotiationContext): Step {
  if (!is(header, NS.streams, 'stream') || header.defaultNs !== NS.client) return refuse(state, ctx, refusal('client-bad-namespace'));
  if (!/^1\.\d+$/.test(header.attrs.version ?? '')) return refuse(state, ctx, refusal('client-unsupported-version'));
  const to = header.attrs.to;
  if (to === undefined) return refuse(state, ctx, refusal('client-no-domain'));
  const domain = normalizeDomain(to);
  if (!domain.ok) return refuse(state, ctx, refusal('client-bad-domain', { problem: domain.problem }));
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
  }, UPSTREAM_HEADER_ATTRS);
  // Pipelining (XEP-0305): the server must offer STARTTLS or be refused, so <starttls/> goes
  // with the header, and both with Tor's BEGIN: header, features and <proceed/> come back in
  // one round trip instead of three. Nothing of the client's is in them.
  const pipelined = decision.pipelining;
  return {
    state: { ...withDomain, phase: 'AwaitUpstream', upstreamStartTls: pipelined },
    actions: [{ type: 'connect', route: decision.route, decision, first: pipelined ? upstreamHeader + STARTTLS : upstreamHeader, optimistic: pipelined }],
  };
}

function onClientElement(state: NegotiationState, element: XmlElement, ctx: NegotiationContext): Step {
  if (!is(element, NS.tls, 'starttls')) return refuse(state, ctx, clientElementRefusal(element));
  if (state.startTlsRequested) return refuse(state, ctx, refusal('client-unexpected-element', { twice: true }));
  const requested = { ...state, startTlsRequested: true, clientWalker: new TlsRecordWalker('client', { afterXml: true }) };
  // Without pipelining, <starttls/> goes to the server once it has offered it.
  if (state.phase !== 'AwaitStartTls' || state.upstreamStartTls) return { state: requested, actions: [] };
  return { state: { ...requested, phase: 'AwaitProceed', upstreamStartTls: true }, actions: [{ type: 'send', to: 'server', data: STARTTLS }] };
}

function clientElementRefusal(element: XmlElement): Refusal {
  if (is(element, NS.sasl, 'auth')) return refusal('client-plaintext-auth');
  if (is(element, NS.client, 'iq') && child(element, NS.register, 'query')) return refusal('client-plaintext-register');
  if (element.uri === NS.client && ['iq', 'message', 'presence'].includes(element.local)) {
    return refusal('client-stanza-before-tls', { element: element.local });
  }
  if (element.uri === NS.compress) return refusal('client-compress-before-tls');
  return refusal('client-unexpected-element', { element: element.local });
}

/**
 * After `<starttls/>` the client may pipeline its TLS ClientHello (XEP-0305 style): TLS records
 * are held until the server's `<proceed/>`; anything else is command injection (CVE-2011-0411 class).
 */
export function onClientTlsBytes(state: NegotiationState, received: Buffer, ctx: NegotiationContext): Step {
  if (TERMINAL.has(state.phase)) return { state, actions: [] };
  const walker = state.clientWalker;
  const problem = walker ? walker.check(received) : 'no <starttls/> before it';
  if (problem) return refuse(state, ctx, refusal(walker?.failedOnHello ? 'client-no-client-hello' : 'client-data-after-starttls', { problem }));
  // Whitespace right after <starttls/> is still XML (go-sendxmpp sends a newline): dropped, never forwarded.
  const bytes = received.subarray(walker?.leading ?? 0);
  if (bytes.length === 0) return { state, actions: [] };
  const heldBytes = state.heldBytes + bytes.length;
  if (heldBytes > ctx.maxHeldBytes) return refuse(state, ctx, refusal('client-limit', { heldTlsBytes: ctx.maxHeldBytes }));
  return { state: { ...state, held: [...state.held, bytes], heldBytes }, actions: [] };
}
