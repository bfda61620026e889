/**
 * One arena per adversarial scenario: a fresh in-process daemon (logging at trace into memory),
 * the SOCKS5 fixture standing in for Tor, the upstream under test (`example.test`, scripted by
 * the scenario: honest or hostile) and an honest upstream (`honest.test`) to prove the daemon
 * still serves others. The expected bytes are written out here, independently of src/policy,
 * so a scenario compares what each side received with what the policy allows, byte for byte.
 */
import { randomBytes } from 'node:crypto';
import type { Test } from 'tap';
import type { ProxyConfig } from '../../src/proxy/server.js';
import { createTestCa, issueServerCert } from './certs.js';
import { startTestDaemon, type EntrySpec, type TestDaemon } from './daemon.js';
import { connectPeer, readTls, startPeerServer, type Peer, type PeerServer } from './adversary-peers.js';
import { sameText } from './adversary-scenario.js';
import { startSocks5Fixture, type SocksFixture } from './socks5-server.js';

export const DOMAIN = 'example.test';
export const HONEST_DOMAIN = 'honest.test';
export const NS_STREAMS = 'http://etherx.jabber.org/streams';
export const XML_DECL = "<?xml version='1.0'?>";

/** What a well-behaved client sends: double quotes, a `from` (the JID), extra attributes. */
export function clientHeaderIn(domain: string, from?: string, extra = ''): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<stream:stream to="${domain}"${from ? ` from="${from}"` : ''} xmlns="jabber:client" xmlns:stream="${NS_STREAMS}" version="1.0" xml:lang="en"${extra}>`;
}
/** The only header the upstream may get: ours, canonical, no `from`. */
export function upstreamHeader(domain: string, lang: string | null = 'en'): string {
  return `${XML_DECL}<stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAMS}' to='${domain}' version='1.0'${lang ? ` xml:lang='${lang}'` : ''}>`;
}
/** What the server gets before it answers: our header and `<starttls/>`, pipelined (XEP-0305). */
export function upstreamOpening(domain: string): string {
  return upstreamHeader(domain) + STARTTLS_OUT;
}
/** What a server sends (Prosody style), and what the client gets from it after re-serialisation. */
export function serverHeaderIn(domain: string, id = 'srv-1'): string {
  return `<?xml version='1.0'?><stream:stream xmlns:stream='${NS_STREAMS}' xml:lang='en' id='${id}' from='${domain}' version='1.0' xmlns='jabber:client' extra='dropped'>`;
}
export function serverHeaderOut(domain: string, id = 'srv-1'): string {
  return `${XML_DECL}<stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAMS}' from='${domain}' id='${id}' version='1.0' xml:lang='en'>`;
}
export const STARTTLS_IN = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
export const STARTTLS_OUT = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
export const PROCEED_IN = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
export const PROCEED_OUT = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
export const FAILURE_IN = "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
/** Real-world features: STARTTLS (optional here), SASL PLAIN, compression, registration. */
export const FEATURES_RICH_IN =
  "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" +
  "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism></mechanisms>" +
  "<compression xmlns='http://jabber.org/features/compress'><method>zlib</method></compression>" +
  "<register xmlns='http://jabber.org/features/iq-register'/></stream:features>";
export const FEATURES_REQUIRED_IN = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>";
export const FEATURES_PLAIN_IN =
  "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>";
/** The only features a client may see before TLS. */
export const FEATURES_OUT = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>";
export const STREAM_CLOSE = '</stream:stream>';

export function escapeXml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** A stream error the daemon writes, optionally after its own stream header (when the client has seen none). */
export function ourError(condition: string, text: string, header?: { id: string; from?: string }): string {
  const head = header
    ? `${XML_DECL}<stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAMS}'${header.from ? ` from='${header.from}'` : ''} id='${header.id}' version='1.0'>`
    : '';
  return `${head}<stream:error><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>` +
    `<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>${escapeXml(text)}</text></stream:error>${STREAM_CLOSE}`;
}

/** Per-scenario secrets: they appear in what the attacker or the victim sends, never in the log. */
export interface Secrets {
  readonly local: string;
  readonly jid: string;
  readonly password: string;
  /** SASL PLAIN initial response: base64 of \0local\0password. */
  readonly sasl: string;
  readonly body: string;
  all(): string[];
}

export function makeSecrets(): Secrets {
  const local = `u${randomBytes(5).toString('hex')}`;
  const password = `pw${randomBytes(9).toString('base64url')}`;
  const body = `body-${randomBytes(6).toString('hex')}`;
  const sasl = Buffer.from(`\0${local}\0${password}`).toString('base64');
  return {
    local,
    jid: `${local}@${DOMAIN}`,
    password,
    sasl,
    body,
    all: () => [local, password, sasl, body, Buffer.from(password).toString('base64')],
  };
}

let pkiPromise: Promise<{ ca: string; key: string; cert: string }> | undefined;
/** One test CA per process, made at run time; one leaf for both upstream domains. */
export function testPki(): Promise<{ ca: string; key: string; cert: string }> {
  pkiPromise ??= (async () => {
    const ca = await createTestCa('adversarial test CA');
    const leaf = await issueServerCert(ca, [DOMAIN, HONEST_DOMAIN]);
    return { ca: ca.certPem, key: leaf.keyPem, cert: leaf.certPem };
  })();
  return pkiPromise;
}

export type ServerScript = (peer: Peer, pki: { key: string; cert: string }) => Promise<void>;

export interface HonestLog {
  /** Offset in the server's received bytes where TLS began (after <starttls/>). */
  tlsFrom?: number;
  decrypted(): Buffer;
}

/** A well-behaved upstream: header and features after the client's header, <proceed/>, real TLS, echo. */
export function honestServer(options: { features?: string; id?: string; log?: HonestLog[] } = {}): ServerScript {
  return async (peer, pki) => {
    const open = await peer.waitFor('<stream:stream');
    await peer.waitFor('>', open);
    const domain = /to='([^']+)'/.exec(peer.text())?.[1] ?? DOMAIN;
    peer.write(serverHeaderIn(domain, options.id) + (options.features ?? FEATURES_REQUIRED_IN));
    const at = await peer.waitFor(STARTTLS_OUT);
    peer.write(PROCEED_IN);
    const echo = peer.tlsServer(at, pki.key, pki.cert);
    options.log?.push({ tlsFrom: at, decrypted: () => echo.decrypted });
  };
}

export interface ArenaOptions {
  /** The upstream for example.test (default: honest). */
  readonly server?: ServerScript;
  readonly daemon?: Partial<ProxyConfig>;
  /** Tor's SOCKS port when not the fixture (a fault injector in front of it, or a misbehaving port). */
  readonly torPort?: (fixturePort: number, t: Test) => Promise<number>;
  readonly entries?: readonly EntrySpec[];
}

export interface Arena {
  readonly daemon: TestDaemon;
  readonly socks: SocksFixture;
  readonly upstream: PeerServer;
  readonly honest: PeerServer;
  readonly pki: { ca: string; key: string; cert: string };
  readonly secrets: Secrets;
  /** A new client connection; `id` is the stream id the daemon gives it (connections are numbered in order). */
  client(): Promise<Peer & { readonly id: string }>;
  /** A new connection to the SOCKS door (numbered with the others: the daemon counts both doors together). */
  socksClient(): Promise<Peer & { readonly id: string }>;
  /** Counts a connection made without `client()` (so later ids stay right). */
  skipIds(n: number): void;
  /**
   * A by-the-book client for honest.test through the same daemon: STARTTLS, TLS verified against
   * the test CA, a round trip inside TLS; asserts every byte on both sides.
   */
  serveHonest(t: Test, label?: string): Promise<void>;
}

export async function startArena(t: Test, options: ArenaOptions = {}): Promise<Arena> {
  const pki = await testPki();
  const script = options.server ?? honestServer();
  const upstream = await startPeerServer((peer) => script(peer, pki));
  t.teardown(() => upstream.close());
  const honestLog: HonestLog[] = [];
  const honestScript = honestServer({ log: honestLog });
  const honest = await startPeerServer((peer) => honestScript(peer, pki));
  t.teardown(() => honest.close());
  const socks = await startSocks5Fixture({
    // An onion goes to the scenario's upstream (a SOCKS client may name one itself).
    resolve: (host) => ([`xmpp.${DOMAIN}`, `upload.${DOMAIN}`, DOMAIN].includes(host) || host.endsWith('.onion') ? upstream.port : host === `xmpp.${HONEST_DOMAIN}` ? honest.port : undefined),
  });
  t.teardown(() => socks.close());
  const torPort = options.torPort ? await options.torPort(socks.port, t) : socks.port;
  const entries = options.entries ?? [{ domain: DOMAIN, host: `xmpp.${DOMAIN}` }, { domain: HONEST_DOMAIN, host: `xmpp.${HONEST_DOMAIN}` }];
  const daemon = await startTestDaemon(t, torPort, entries, { lingerMs: 2000, ...options.daemon });
  const secrets = makeSecrets();
  let nextId = 1;
  const clients: Peer[] = [];
  t.teardown(() => {
    for (const c of clients) c.socket.destroy();
  });

  const connectTo = async (port: number): Promise<Peer & { id: string }> => {
    const id = `xop-${nextId++}`;
    const peer = await connectPeer(port);
    clients.push(peer);
    return Object.assign(peer, { id });
  };
  const client = (): Promise<Peer & { id: string }> => connectTo(daemon.port);

  const serveHonest = async (t: Test, label = 'another client'): Promise<void> => {
    const before = honest.peers.length;
    const c = await client();
    c.write(clientHeaderIn(HONEST_DOMAIN, `someone@${HONEST_DOMAIN}`));
    const featuresEnd = await c.waitFor(FEATURES_OUT);
    c.write(STARTTLS_IN);
    const proceedEnd = await c.waitFor(PROCEED_OUT, featuresEnd);
    const secure = await c.tlsClient(proceedEnd, HONEST_DOMAIN, pki.ca);
    const ping = `ping-${randomBytes(4).toString('hex')}`;
    secure.write(ping);
    const pong = await readTls(secure, ping.length);
    sameText(t, c.text(0, proceedEnd), serverHeaderOut(HONEST_DOMAIN) + FEATURES_OUT + PROCEED_OUT, `${label}: got header, STARTTLS required and <proceed/> before TLS`);
    t.equal(pong.toString(), ping, `${label}: served, a round trip inside TLS verified against the CA`);
    const server = honest.peers[before];
    sameText(t, server?.text(0, honestLog[before]?.tlsFrom), upstreamHeader(HONEST_DOMAIN) + STARTTLS_OUT, `${label}: the server got only the canonical header and <starttls/> in clear`);
    secure.destroy();
    await c.waitForClose();
  };

  return {
    daemon,
    socks,
    upstream,
    honest,
    pki,
    secrets,
    client,
    socksClient: () => connectTo(daemon.socksPort),
    skipIds: (n) => {
      nextId += n;
    },
    serveHonest,
  };
}

/**
 * After a scenario: every session closed (bounded wait, polled), and the trace-level log holds
 * no secret the scenario's peers sent (password, SASL payload, body, JID local part).
 */
export async function settleArena(t: Test, arena: Arena, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (arena.daemon.proxy.connections > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  t.equal(arena.daemon.proxy.connections, 0, 'every session closed');
  const raw = arena.daemon.rawLogs();
  const lines = raw.split('\n').filter(Boolean);
  t.ok(lines.length > 0, 'the daemon logged (at trace level)');
  const leaked = arena.secrets.all().filter((secret) => raw.includes(secret));
  t.same(leaked, [], 'no password, SASL payload, body or JID local part in the log, at any level');
  t.same(namesAtInfoOrAbove(lines), [], 'no domain, host or onion in the log at info, warn or error');
}

/** Host names in what the production logger writes at info level and above (domains belong to debug only). */
const HOST_NAME = /[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:test|onion|net|org|com|im|de|is|example|invalid|cat|me)\b/gi;

export function namesAtInfoOrAbove(lines: readonly string[]): string[] {
  return lines
    .filter((line) => (JSON.parse(line) as { level: number }).level >= 30)
    .flatMap((line) => line.match(HOST_NAME) ?? []);
}
