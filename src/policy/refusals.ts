import { seconds } from '../common/words.js';

/**
 * Every refusal the daemon can make, in one place: its stable code (logs, counters, the control
 * socket), the RFC 6120 §4.9.3 condition, the SOCKS5 reply where the SOCKS door answers with one,
 * the words the client reads, and the words the log keeps. The client's words may name the domain
 * the client itself sent; the log's never name a domain, an onion, a JID or a credential.
 */

/** RFC 6120 §4.9.3 stream error conditions that the daemon uses. */
export type StreamCondition =
  | 'bad-format'
  | 'connection-timeout'
  | 'host-gone'
  | 'host-unknown'
  | 'invalid-namespace'
  | 'not-well-formed'
  | 'policy-violation'
  | 'remote-connection-failed'
  | 'resource-constraint'
  | 'restricted-xml'
  | 'unsupported-version'
  | 'internal-server-error';

/** RFC 1928 §6 reply codes. */
export const SOCKS_REPLY = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

interface Spec<A> {
  readonly condition: StreamCondition;
  /** What the SOCKS door answers when it refuses before success (general failure when absent). */
  readonly socks?: number;
  readonly text: (args: A) => string;
  /** The log's words; the client's when absent (only where those name no domain). */
  readonly log?: (args: A) => string;
}

const spec = <A = void>(s: Spec<A>): Spec<A> => s;

const NOTHING_SENT = 'nothing was sent to the server';
const KEPT_BACK = 'nothing of it was passed on';

const instead = {
  features: 'instead of its stream features',
  proceed: 'instead of <proceed/> in answer to <starttls/>',
  nothing: 'before encryption was set up',
} as const;

type XmlProblem = { readonly detail: string };
type ServerSays = { readonly domain: string };

const xmlWords = {
  'not-well-formed': (a: XmlProblem) => `XML that is not well-formed (${a.detail})`,
  'restricted-xml': (a: XmlProblem) => `XML that XMPP forbids: ${a.detail}`,
  'bad-format': (a: XmlProblem) => `badly formatted XML (${a.detail})`,
  limit: (a: XmlProblem) => `too much: ${a.detail}`,
} as const;

const clientXml = (kind: keyof typeof xmlWords, condition: StreamCondition) =>
  spec<XmlProblem>({ condition, text: (a) => `your client sent ${xmlWords[kind](a)} before encryption was set up; ${NOTHING_SENT}` });
const serverXml = (kind: keyof typeof xmlWords, condition: StreamCondition) =>
  spec<XmlProblem>({ condition, text: (a) => `the server sent ${xmlWords[kind](a)} before encryption was set up; ${KEPT_BACK}` });

/** Where a failed upstream was: the words name the kind of place, never the place. */
export type UpstreamPlace = 'onion' | 'clearnet';
type Upstream = { readonly place: UpstreamPlace; readonly words: string };
const upstream = (socks: number) =>
  spec<Upstream>({
    condition: 'remote-connection-failed',
    socks,
    text: (a) => `could not reach ${a.place === 'onion' ? 'the onion service' : 'the server through a Tor exit'}: ${a.words}; nothing was sent`,
    log: (a) => a.words,
  });

const R = SOCKS_REPLY;

export const REFUSALS = {
  // ---- the client's stream (RFC 6120 §4.7, §5.4) ----
  'header-timeout': spec<{ seconds: number; directTls?: true }>({ condition: 'connection-timeout',
    text: (a) => a.directTls ? `your client sent no TLS ClientHello within ${seconds(a.seconds)}` : `your client did not send its stream header within ${seconds(a.seconds)}` }),
  'negotiation-timeout': spec<{ seconds: number }>({ condition: 'connection-timeout', text: (a) => `encryption was not set up within ${seconds(a.seconds)}; closing the connection` }),
  'client-bad-namespace': spec({ condition: 'invalid-namespace', text: () => 'your client did not open an XMPP client stream (<stream:stream> in jabber:client)' }),
  'client-unsupported-version': spec({ condition: 'unsupported-version', text: () => "your client did not ask for an XMPP 1.0 stream (version='1.0'), which STARTTLS needs" }),
  'client-no-domain': spec({ condition: 'host-unknown', text: () => "your client did not say which server it wants (no 'to' in the stream header)" }),
  'client-bad-domain': spec<{ problem: string }>({ condition: 'host-unknown', text: (a) => `the server name your client asked for cannot be used: ${a.problem}`,
    log: (a) => `the server name the client asked for cannot be used: ${a.problem}` }),
  'client-plaintext-auth': spec({ condition: 'policy-violation',
    text: () => `your client tried to log in (<auth>) before encryption was set up; ${NOTHING_SENT}. Set the account to require encryption` }),
  'client-plaintext-register': spec({ condition: 'policy-violation', text: () => `your client tried to register an account before encryption was set up; ${NOTHING_SENT}` }),
  'client-stanza-before-tls': spec<{ element: string }>({ condition: 'policy-violation', text: (a) => `your client sent a <${a.element}> stanza before encryption was set up; ${NOTHING_SENT}` }),
  'client-compress-before-tls': spec({ condition: 'policy-violation', text: () => `your client asked for compression before encryption was set up; ${NOTHING_SENT}` }),
  'client-unexpected-element': spec<{ element: string } | { twice: true }>({ condition: 'policy-violation',
    text: (a) => 'twice' in a ? 'your client sent <starttls/> twice'
      : `your client sent <${a.element.slice(0, 40)}> where only <starttls/> is allowed before encryption; ${NOTHING_SENT}`,
    log: (a) => 'twice' in a ? 'the client sent <starttls/> twice' : 'the client sent an element other than <starttls/> before encryption' }),
  'client-data-after-starttls': spec<{ problem: string }>({ condition: 'policy-violation',
    text: (a) => `your client sent data after <starttls/> that is not TLS (${a.problem}); ${NOTHING_SENT}` }),
  'client-no-client-hello': spec<{ problem: string }>({ condition: 'policy-violation',
    text: (a) => `your client sent a TLS record after <starttls/> that is not a ClientHello (${a.problem}); ${NOTHING_SENT}` }),
  'client-limit': spec<XmlProblem | { heldTlsBytes: number } | { whileConnecting: number }>({ condition: 'policy-violation',
    text: (a) => 'heldTlsBytes' in a ? `your client sent more than ${a.heldTlsBytes} bytes of TLS before the server accepted STARTTLS`
      : 'whileConnecting' in a ? `your client sent more than ${a.whileConnecting} bytes while Tor was connecting`
        : `your client sent ${xmlWords.limit(a)} before encryption was set up; ${NOTHING_SENT}` }),
  'client-not-well-formed': clientXml('not-well-formed', 'not-well-formed'),
  'client-restricted-xml': clientXml('restricted-xml', 'restricted-xml'),
  'client-bad-format': clientXml('bad-format', 'bad-format'),

  // ---- where the stream may go (the onion map, the SOCKS destination) ----
  'route-retired': spec<{ domain: string; note?: string }>({ condition: 'host-gone', socks: R.notAllowed,
    text: (a) => a.note ?? `${a.domain} no longer offers an XMPP service`, log: () => 'the domain no longer offers an XMPP service (retired in the onion map)' }),
  'route-onion-only': spec<{ domain: string; why?: string }>({ condition: 'policy-violation', socks: R.notAllowed,
    text: (a) => `${a.domain} has no usable onion service, and onion-only mode forbids going through a Tor exit. ${capitalise(a.why ?? 'no onion service is known for it')}`,
    log: () => 'the domain has no usable onion service, and onion-only mode forbids a Tor exit' }),
  'route-bad-onion': spec<{ problem: string }>({ condition: 'host-unknown', socks: R.hostUnreachable,
    text: (a) => `the server address ${a.problem}`, log: () => 'the onion address is not valid' }),
  'socks-to-mismatch': spec<{ asked: string; to: string }>({ condition: 'host-unknown',
    text: (a) => `your client asked the proxy for ${a.asked} but its stream is for ${a.to}; refusing a server that does not match`,
    log: () => "the stream's 'to' is not a domain the SOCKS destination serves" }),

  // ---- the server's stream ----
  'server-bad-namespace': spec({ condition: 'invalid-namespace', text: () => 'the server did not answer with an XMPP client stream' }),
  'server-unsupported-version': spec<ServerSays>({ condition: 'unsupported-version',
    text: (a) => `server ${a.domain} answered with a pre-1.0 XMPP stream, which cannot use STARTTLS; refusing to continue without encryption`,
    log: () => 'the server answered with a pre-1.0 XMPP stream' }),
  'server-no-starttls': spec<ServerSays>({ condition: 'policy-violation',
    text: (a) => `server ${a.domain} did not offer STARTTLS; refusing to continue without encryption (nothing was sent to it)`,
    log: () => 'the server did not offer STARTTLS' }),
  'server-starttls-failure': spec<ServerSays>({ condition: 'policy-violation',
    text: (a) => `server ${a.domain} refused to start TLS (<failure/>); closing rather than continuing without encryption`,
    log: () => 'the server refused to start TLS (<failure/>)' }),
  'server-unexpected-element': spec<ServerSays & { element: string; awaiting: 'features' | 'proceed' | 'nothing' }>({ condition: 'policy-violation',
    text: (a) => `server ${a.domain} sent <${a.element.slice(0, 40)}> ${instead[a.awaiting]}; refusing to continue without encryption`,
    log: (a) => `the server sent an unexpected element ${instead[a.awaiting]}` }),
  'server-see-other-host': spec<ServerSays>({ condition: 'policy-violation',
    text: (a) => `server ${a.domain} told your client to connect to another host (see-other-host) before encryption was set up; ` +
      'the proxy does not pass that on, since following it could leave Tor',
    log: () => 'the server sent see-other-host before encryption' }),
  'server-data-after-proceed': spec({ condition: 'policy-violation',
    text: () => 'the server (or someone on the path) sent unencrypted data right after <proceed/>; it was not passed on' }),
  'server-closed': spec<{ what: 'connection' | 'stream' }>({ condition: 'remote-connection-failed',
    text: (a) => `the server closed the ${a.what} before encryption was set up` }),
  'server-reset': spec({ condition: 'remote-connection-failed', text: () => 'the connection to the server broke before encryption was set up' }),
  'server-not-well-formed': serverXml('not-well-formed', 'not-well-formed'),
  'server-restricted-xml': serverXml('restricted-xml', 'restricted-xml'),
  'server-bad-format': serverXml('bad-format', 'bad-format'),
  'server-limit': serverXml('limit', 'policy-violation'),

  // ---- after TLS started: a cut, no stream error can be read any more ----
  'tls-framing-client': spec<{ problem: string }>({ condition: 'policy-violation', text: (a) => `the client sent data that is not TLS (${a.problem})` }),
  'tls-framing-server': spec<{ problem: string }>({ condition: 'policy-violation', text: (a) => `the server sent data that is not TLS (${a.problem})` }),
  // A record header with something else than the hello inside: plaintext dressed as TLS.
  'tls-no-client-hello': spec<{ problem: string }>({ condition: 'policy-violation', text: (a) => `the client's TLS did not start with a ClientHello (${a.problem})` }),
  'tls-no-server-hello': spec<{ problem: string }>({ condition: 'policy-violation', text: (a) => `the server's TLS did not start with a ServerHello (${a.problem})` }),

  // ---- the daemon itself ----
  'too-many-connections': spec<{ limit: number }>({ condition: 'resource-constraint', socks: R.generalFailure,
    text: (a) => `the proxy already has ${a.limit} connections open; try again later` }),
  'too-many-negotiations': spec<{ limit: number; mib: number }>({ condition: 'resource-constraint', socks: R.generalFailure,
    text: (a) => `the proxy is already setting up ${a.limit} connections, all the memory it allows for that (--pre-tls-memory ${a.mib} MiB); try again later` }),

  // ---- the SOCKS door (RFC 1928): the client reads the reply code; the words go to the log ----
  'socks-timeout': spec<{ seconds: number }>({ condition: 'connection-timeout', text: (a) => `the SOCKS handshake did not finish within ${seconds(a.seconds)}` }),
  'socks-handshake': spec<{ problem: string }>({ condition: 'policy-violation', text: (a) => a.problem }),
  'socks-port-not-allowed': spec<{ port: number }>({ condition: 'policy-violation', socks: R.notAllowed,
    text: (a) => `port ${a.port} is not an XMPP client port, a direct-TLS port or an HTTPS port (443, or one the map names for a service); --socks-allow-other-ports passes it through Tor unchecked` }),
  'socks-ip-destination': spec({ condition: 'policy-violation', socks: R.notAllowed,
    text: () => 'the client asked for an IP address: it resolved the name itself, outside Tor (set the proxy type to Tor/Privacy so names go to Tor)' }),
  'socks-bad-onion': spec<{ problem: string }>({ condition: 'host-unknown', socks: R.hostUnreachable, text: (a) => a.problem,
    log: () => 'the destination is not a valid onion address' }),
  'socks-bad-destination': spec<{ problem: string }>({ condition: 'host-unknown', socks: R.notAllowed, text: (a) => `the destination cannot be used: ${a.problem}` }),

  // ---- the way through Tor: Tor's own reasons (RFC 1928 §6, Tor's extended onion replies) ----
  'tor-unavailable': upstream(R.generalFailure),
  'tor-timeout': upstream(R.ttlExpired),
  'tor-protocol': upstream(R.generalFailure),
  'tor-error': upstream(R.generalFailure),
  'proxy-out-of-descriptors': upstream(R.generalFailure),
  'client-gone': upstream(R.generalFailure),
  'socks-general-failure': upstream(R.generalFailure),
  'socks-not-allowed': upstream(R.notAllowed),
  'socks-network-unreachable': upstream(R.networkUnreachable),
  'socks-host-unreachable': upstream(R.hostUnreachable),
  'socks-connection-refused': upstream(R.connectionRefused),
  'socks-ttl-expired': upstream(R.ttlExpired),
  'socks-command-not-supported': upstream(R.generalFailure),
  'socks-address-not-supported': upstream(R.addressTypeNotSupported),
  'socks-unknown-reply': upstream(R.generalFailure),
  'onion-not-found': upstream(R.hostUnreachable),
  'onion-descriptor-invalid': upstream(R.generalFailure),
  'onion-intro-failed': upstream(R.hostUnreachable),
  'onion-rendezvous-failed': upstream(R.hostUnreachable),
  'onion-auth-missing': upstream(R.notAllowed),
  'onion-auth-wrong': upstream(R.notAllowed),
  'onion-address-invalid': upstream(R.hostUnreachable),
  'onion-intro-timeout': upstream(R.hostUnreachable),
} as const;

export type RefusalCode = keyof typeof REFUSALS;
export type RefusalArgs<C extends RefusalCode> = (typeof REFUSALS)[C] extends Spec<infer A> ? A : never;

/** Why a connection was refused: the stable code, the condition, the client's words and the log's. */
export interface Refusal {
  readonly code: RefusalCode;
  readonly condition: StreamCondition;
  readonly socksReply: number;
  /** What the client reads (the `<text/>` of its stream error). */
  readonly text: string;
  /** What the log keeps at warn level: never a domain, an onion, a JID or a credential. */
  readonly log: string;
}

export function refusal<C extends RefusalCode>(code: C, ...args: RefusalArgs<C> extends void ? [] : [RefusalArgs<C>]): Refusal {
  const entry = REFUSALS[code] as Spec<unknown>;
  const a = args[0];
  const text = entry.text(a);
  return { code, condition: entry.condition, socksReply: entry.socks ?? SOCKS_REPLY.generalFailure, text, log: entry.log ? entry.log(a) : text };
}

/** The Tor failures (and only those) that an UpstreamError may carry. */
export type UpstreamCode = { [C in RefusalCode]: RefusalArgs<C> extends Upstream ? C : never }[RefusalCode];

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
