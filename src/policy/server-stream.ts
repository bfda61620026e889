import { LANGUAGE_TAG, refuse, relayIfReady, type NegotiationContext, type NegotiationState, type Step } from './negotiation-state.js';
import { refusal } from './refusals.js';
import { FEATURES_STARTTLS_REQUIRED, STARTTLS, STREAM_CLOSE, streamErrorElement, streamHeader, XML_DECLARATION } from './serialize.js';
import { TlsRecordWalker } from './tls-records.js';
import { violationRefusal } from './violations.js';
import { child, is, NS, type XmlElement } from './xml-element.js';
import type { XmlEvent, XmlReading } from './xml-events.js';

const CLIENT_HEADER_ATTRS = ['from', 'id', 'version', 'xml:lang'] as const;

/** What a server may send before TLS: features, `<proceed/>`, `<failure/>`, a stream error. */
const isNegotiation = (element: XmlElement): boolean =>
  is(element, NS.streams, 'features') || is(element, NS.tls, 'proceed') || is(element, NS.tls, 'failure') || is(element, NS.streams, 'error');

/** How the server's bytes are read: up to `<proceed/>`; anything but the negotiation is decided on at its start tag. */
export const SERVER_READING: XmlReading = {
  stopAfter: (element) => is(element, NS.tls, 'proceed'),
  decideAtStart: (top, depth) => depth === 1 && !isNegotiation(top),
  keep: (parent, uri, local, depth) => depth === 2 && keptForDecision(parent, uri, local),
};

/** The decision reads a features' first `<starttls/>`, and a stream error's first condition and first text: nothing else is kept. */
function keptForDecision(top: XmlElement, uri: string, local: string): boolean {
  if (is(top, NS.streams, 'features')) return uri === NS.tls && local === 'starttls' && top.children.length === 0;
  if (!is(top, NS.streams, 'error') || uri !== NS.streamErrors) return false;
  const isText = local === 'text';
  return !top.children.some((c) => (c.local === 'text') === isText);
}

/** The server's side before TLS: its header, features that offer STARTTLS, `<proceed/>` (RFC 6120 §5.4.2). */
export function onServerXml(state: NegotiationState, event: XmlEvent, ctx: NegotiationContext): Step {
  switch (event.kind) {
    case 'violation':
      return refuse(state, ctx, violationRefusal('server', event.violation));
    case 'header':
      return onServerHeader(state, event.header, ctx);
    case 'end':
      return refuse(state, ctx, refusal('server-closed', { what: 'stream' }));
    case 'element':
      return onServerElement(state, event.element, event.trailing, ctx);
  }
}

function onServerHeader(state: NegotiationState, header: XmlElement, ctx: NegotiationContext): Step {
  if (!is(header, NS.streams, 'stream') || header.defaultNs !== NS.client) return refuse(state, ctx, refusal('server-bad-namespace'));
  if (!/^1\.\d+$/.test(header.attrs.version ?? '')) {
    return refuse(state, ctx, refusal('server-unsupported-version', { domain: state.domain ?? '' }));
  }
  const { 'xml:lang': lang, ...attrs } = header.attrs;
  const kept = lang !== undefined && LANGUAGE_TAG.test(lang) ? { ...attrs, 'xml:lang': lang } : attrs;
  return {
    state: { ...state, phase: 'AwaitServerFeatures', clientHasHeader: true },
    actions: [{ type: 'send', to: 'client', data: XML_DECLARATION + streamHeader(kept, CLIENT_HEADER_ATTRS) }],
  };
}

function onServerElement(state: NegotiationState, element: XmlElement, trailing: Buffer | undefined, ctx: NegotiationContext): Step {
  if (is(element, NS.streams, 'error')) return onServerStreamError(state, element, ctx);
  const domain = state.domain ?? '';
  switch (state.phase) {
    case 'AwaitServerFeatures':
      if (!is(element, NS.streams, 'features')) break;
      if (!child(element, NS.tls, 'starttls')) return refuse(state, ctx, refusal('server-no-starttls', { domain }));
      if (state.upstreamStartTls) {
        return { state: { ...state, phase: 'AwaitProceed' }, actions: [{ type: 'send', to: 'client', data: FEATURES_STARTTLS_REQUIRED }] };
      }
      if (state.startTlsRequested) {
        return {
          state: { ...state, phase: 'AwaitProceed', upstreamStartTls: true },
          actions: [
            { type: 'send', to: 'client', data: FEATURES_STARTTLS_REQUIRED },
            { type: 'send', to: 'server', data: STARTTLS },
          ],
        };
      }
      return { state: { ...state, phase: 'AwaitStartTls' }, actions: [{ type: 'send', to: 'client', data: FEATURES_STARTTLS_REQUIRED }] };
    case 'AwaitProceed':
      if (is(element, NS.tls, 'failure')) return refuse(state, ctx, refusal('server-starttls-failure', { domain }));
      if (!is(element, NS.tls, 'proceed')) break;
      return onProceed(state, trailing ?? Buffer.alloc(0), ctx);
    default:
      break;
  }
  const awaiting = state.phase === 'AwaitServerFeatures' ? 'features' : state.phase === 'AwaitProceed' ? 'proceed' : 'nothing';
  return refuse(state, ctx, refusal('server-unexpected-element', { domain, element: element.local, awaiting }));
}

/**
 * RFC 6120 §5.4.3.3: TLS starts right after `<proceed/>`, with the client's ClientHello; the
 * server may send whitespace before its ServerHello (dropped, however it is chunked), nothing
 * else. When pipelining, the server's `<proceed/>` may come before the client asked: the client
 * gets its own once it does.
 */
function onProceed(state: NegotiationState, trailing: Buffer, ctx: NegotiationContext): Step {
  const serverWalker = new TlsRecordWalker('server', { afterXml: true });
  if (serverWalker.check(trailing) !== undefined || serverWalker.leading < trailing.length) return refuse(state, ctx, refusal('server-data-after-proceed'));
  return relayIfReady({ ...state, phase: 'AwaitStartTls', serverWalker });
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
  if (condition?.local === 'see-other-host') return refuse(state, ctx, refusal('server-see-other-host', { domain: state.domain ?? '' }));
  const name = condition && STREAM_CONDITIONS.has(condition.local) ? condition.local : 'undefined-condition';
  const text = child(element, NS.streamErrors, 'text');
  const lang = text?.attrs['xml:lang'];
  const words = text && text.text !== '' ? { text: text.text, ...(lang !== undefined && LANGUAGE_TAG.test(lang) ? { lang } : {}) } : undefined;
  return {
    state: { ...state, phase: 'Closed' },
    actions: [{ type: 'close', reason: 'server-stream-error', toClient: streamErrorElement(name, words) + STREAM_CLOSE }],
  };
}
