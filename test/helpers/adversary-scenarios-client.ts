/**
 * Client-side mistakes and attackers. The victim is the server (and whoever watches the path
 * through a Tor exit): it must get nothing beyond the canonical header and <starttls/> before
 * TLS. The client (the attacker, or a careless client) must get the right stream error, in words.
 */
import { randomBytes } from 'node:crypto';
import type { Test } from 'tap';
import {
  clientHeaderIn, DOMAIN, FEATURES_OUT, FEATURES_REQUIRED_IN, NS_STREAMS, ourError, PROCEED_IN, PROCEED_OUT,
  serverHeaderIn, serverHeaderOut, STARTTLS_IN, STARTTLS_OUT, upstreamHeader, upstreamOpening, type Arena, type ServerScript,
} from './adversary-arena.js';
import { readTls, type Peer } from './adversary-peers.js';
import { expectClosed, sameText, isTlsRecords, type Scenario } from './adversary-scenario.js';
import { tlsHandshakeRecord } from './policy-driver.js';

const UPSTREAM = upstreamHeader(DOMAIN);
/** Our header and `<starttls/>`: what the server gets before it answers (pipelined). */
const OPENING = upstreamOpening(DOMAIN);
const NOTHING = 'nothing was sent to the server';

/** Header and features, then waits for <starttls/> and never answers it. */
const neverProceeds: ServerScript = async (peer) => {
  await peer.waitFor('>', await peer.waitFor('<stream:stream'));
  peer.write(serverHeaderIn(DOMAIN) + FEATURES_REQUIRED_IN);
  await peer.closed;
};


async function afterFeatures(arena: Arena): Promise<Peer & { id: string }> {
  const c = await arena.client();
  c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
  await c.waitFor(FEATURES_OUT);
  return c;
}

/** The client sends `attack` after the features; refused with `condition`/`text`; the server got the header only. */
function refusedAfterFeatures(name: string, attack: (arena: Arena) => string | Buffer, condition: string, text: string): Scenario {
  return {
    group: 'client',
    name,
    async run(t, arena) {
      const c = await afterFeatures(arena);
      c.write(attack(arena));
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), serverHeaderOut(DOMAIN) + FEATURES_OUT + ourError(condition, text), 'attacker (client): the refusal in words');
      const server = arena.upstream.peers[0]!;
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), OPENING, 'victim (server): our opening only');
      await arena.serveHonest(t);
    },
  };
}

/** The client's header itself is refused: our own header and the error, Tor never asked. */
function refusedHeader(name: string, header: (arena: Arena) => string | Buffer, condition: string, text: string, from?: string): Scenario {
  return {
    group: 'client',
    name,
    async run(t, arena) {
      const c = await arena.client();
      c.write(header(arena));
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), ourError(condition, text, { id: c.id, ...(from ? { from } : {}) }), 'client: our own header and the refusal in words');
      t.equal(arena.socks.requests.length, 0, 'Tor was never asked: nothing reached any server');
      await arena.serveHonest(t);
    },
  };
}

const header = (domain: string): string =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAMS}' to='${domain}' version='1.0'>`;

export const clientScenarios: Scenario[] = [
  refusedAfterFeatures('plaintext <auth mechanism="PLAIN">',
    (a) => `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${a.secrets.sasl}</auth>`,
    'policy-violation', `your client tried to log in (<auth>) before encryption was set up; ${NOTHING}. Set the account to require encryption`),
  refusedAfterFeatures('in-band registration before TLS',
    (a) => `<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>${a.secrets.local}</username><password>${a.secrets.password}</password></query></iq>`,
    'policy-violation', `your client tried to register an account before encryption was set up; ${NOTHING}`),
  refusedAfterFeatures('a message stanza before TLS',
    (a) => `<message to='bob@example.test' type='chat'><body>${a.secrets.body}</body></message>`,
    'policy-violation', `your client sent a <message> stanza before encryption was set up; ${NOTHING}`),
  refusedAfterFeatures('command injection: <starttls/> and plaintext <auth> in the same write (CVE-2011-0411 class)',
    (a) => STARTTLS_IN + `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${a.secrets.sasl}</auth>`,
    'policy-violation', `your client sent data after <starttls/> that is not TLS (the first bytes are not a TLS handshake (they look like plaintext)); ${NOTHING}`),
  refusedAfterFeatures('<starttls/> in the wrong namespace',
    () => "<starttls xmlns='jabber:client'/>",
    'policy-violation', `your client sent <starttls> where only <starttls/> is allowed before encryption; ${NOTHING}`),
  refusedAfterFeatures('a comment',
    () => '<!-- hello -->',
    'restricted-xml', `your client sent XML that XMPP forbids: XML comments are not allowed in XMPP (RFC 6120 §11.1) before encryption was set up; ${NOTHING}`),
  refusedAfterFeatures('a processing instruction',
    () => "<?xml-stylesheet href='x'?>",
    'restricted-xml', `your client sent XML that XMPP forbids: processing instructions are not allowed in XMPP (RFC 6120 §11.1) before encryption was set up; ${NOTHING}`),
  refusedAfterFeatures('invalid UTF-8',
    (a) => Buffer.concat([Buffer.from(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>${a.secrets.body}`), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('</starttls>')]),
    'not-well-formed', `your client sent XML that is not well-formed (the bytes are not valid UTF-8) before encryption was set up; ${NOTHING}`),
  refusedAfterFeatures('a NUL byte',
    () => "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>\u0000</starttls>",
    'not-well-formed', `your client sent XML that is not well-formed (disallowed character) before encryption was set up; ${NOTHING}`),
  // Regression (found by test/fuzz): saxes closed the element before reporting the mismatch.
  refusedAfterFeatures('<starttls> closed by a mismatched end tag',
    () => "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></Xtarttls>",
    'not-well-formed', `your client sent XML that is not well-formed (unexpected close tag) before encryption was set up; ${NOTHING}`),
  refusedAfterFeatures('elements nested 50 deep (inside <starttls>, the one element whose content is read)',
    () => "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>" + '<a>'.repeat(50),
    'policy-violation', `your client sent too much: elements are nested more than 8 deep before encryption was set up; ${NOTHING}`),
  refusedAfterFeatures('an attribute flood',
    () => `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls' ${Array.from({ length: 100 }, (_, i) => `a${i}='x'`).join(' ')}/>`,
    'policy-violation', `your client sent too much: an element has more than 32 attributes before encryption was set up; ${NOTHING}`),
  refusedAfterFeatures('text outside any element',
    (a) => `${a.secrets.password} ${STARTTLS_IN}`,
    'bad-format', `your client sent badly formatted XML (text outside of any element) before encryption was set up; ${NOTHING}`),
  {
    group: 'client',
    name: 'plaintext <auth> pipelined right behind the header, before the server answered',
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid) + `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${arena.secrets.sasl}</auth>`);
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), ourError('policy-violation',
        `your client tried to log in (<auth>) before encryption was set up; ${NOTHING}. Set the account to require encryption`, { id: c.id, from: DOMAIN }),
      'attacker (client): our own header and the refusal');
      for (const server of arena.upstream.peers) {
        await expectClosed(t, server, 'server');
        sameText(t, server.text(), '', 'victim (server): if Tor connected at all, not one byte');
      }
      await arena.serveHonest(t);
    },
  },
  {
    group: 'client',
    name: 'command injection in a later write, after <starttls/> and before <proceed/>',
    arena: { server: neverProceeds },
    async run(t, arena) {
      const c = await afterFeatures(arena);
      c.write(STARTTLS_IN);
      const server = await arena.upstream.peer(0);
      await server.waitFor(STARTTLS_OUT);
      c.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${arena.secrets.sasl}</auth>`);
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), serverHeaderOut(DOMAIN) + FEATURES_OUT + ourError('policy-violation',
        `your client sent data after <starttls/> that is not TLS (the first bytes are not a TLS handshake (they look like plaintext)); ${NOTHING}`),
      'attacker (client): no <proceed/>, the refusal');
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), OPENING, 'victim (server): the negotiation only');
    },
  },
  pipelinedClientHello(),
  {
    group: 'client',
    name: 'a held ClientHello followed by plaintext before <proceed/>: the held bytes are dropped, never sent',
    arena: { server: neverProceeds },
    async run(t, arena) {
      const c = await afterFeatures(arena);
      c.write(Buffer.concat([Buffer.from(STARTTLS_IN), tlsHandshakeRecord(300)]));
      const server = await arena.upstream.peer(0);
      await server.waitFor(STARTTLS_OUT);
      c.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>${arena.secrets.sasl}</auth>`);
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), serverHeaderOut(DOMAIN) + FEATURES_OUT + ourError('policy-violation',
        `your client sent data after <starttls/> that is not TLS (bytes that are not a TLS record (they look like plaintext)); ${NOTHING}`), 'client');
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), OPENING, 'server: neither the held record nor the plaintext');
    },
  },
  {
    group: 'client',
    name: 'more than 32 KiB of TLS held before <proceed/>',
    arena: { server: neverProceeds },
    async run(t, arena) {
      const c = await afterFeatures(arena);
      c.write(Buffer.concat([Buffer.from(STARTTLS_IN), tlsHandshakeRecord(16_000), tlsHandshakeRecord(16_000), tlsHandshakeRecord(16_000)]));
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), serverHeaderOut(DOMAIN) + FEATURES_OUT + ourError('policy-violation',
        'your client sent more than 32768 bytes of TLS before the server accepted STARTTLS'), 'client');
      const server = arena.upstream.peers[0]!;
      await expectClosed(t, server, 'server');
      t.ok(server.text() === UPSTREAM + STARTTLS_OUT || server.text() === UPSTREAM, 'server: the negotiation at most, none of the held bytes');
    },
  },
  {
    group: 'client',
    name: 'plaintext instead of a ClientHello after <proceed/> (a client that skips TLS)',
    async run(t, arena) {
      const c = await afterFeatures(arena);
      c.write(STARTTLS_IN);
      await c.waitFor(PROCEED_OUT);
      c.write(header(DOMAIN) + `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${arena.secrets.sasl}</auth>`);
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), serverHeaderOut(DOMAIN) + FEATURES_OUT + PROCEED_OUT, 'client: nothing after <proceed/>');
      const server = arena.upstream.peers[0]!;
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), OPENING, 'server: not one plaintext byte after <starttls/>');
      t.match(arena.daemon.logs().find((l) => l.msg === 'cut: not TLS'), { reason: 'tls-framing-client' });
    },
  },
  refusedHeader('no to in the stream header',
    () => "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
    'host-unknown', "your client did not say which server it wants (no 'to' in the stream header)"),
  refusedHeader('to is an IP literal', () => header('127.0.0.1'),
    'host-unknown', 'the server name your client asked for cannot be used: it is an IP address, not a domain name'),
  refusedHeader('to is an IPv6 literal', () => header('[::1]'),
    'host-unknown', 'the server name your client asked for cannot be used: it is an IP address, not a domain name'),
  refusedHeader('to is a JID with a local part', (a) => header(a.secrets.jid),
    'host-unknown', 'the server name your client asked for cannot be used: it is a JID with a user part, not a server domain'),
  refusedHeader('to is over-long (260 characters)', () => header(`${'a'.repeat(63)}.`.repeat(4) + 'test'),
    'host-unknown', 'the server name your client asked for cannot be used: it is longer than 253 characters'),
  refusedHeader('to is not a valid IDNA name', () => header('xn--zz.test'),
    'host-unknown', 'the server name your client asked for cannot be used: it is not a valid domain name under IDNA 2008 (RFC 5891)'),
  refusedHeader('a DOCTYPE with an entity-expansion bomb',
    () => "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol \"lol\">" +
      Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('') + ']>' +
      header(DOMAIN).slice("<?xml version='1.0'?>".length) + '<a>&lol9;</a>',
    'restricted-xml', `your client sent XML that XMPP forbids: a DOCTYPE is not allowed in XMPP (RFC 6120 §11.1) before encryption was set up; ${NOTHING}`),
  refusedHeader('a server-to-server stream (jabber:server)', () => header(DOMAIN).replace('jabber:client', 'jabber:server'),
    'invalid-namespace', 'your client did not open an XMPP client stream (<stream:stream> in jabber:client)'),
  refusedHeader('a pre-1.0 stream (no version)', () => header(DOMAIN).replace(" version='1.0'>", '>'),
    'unsupported-version', "your client did not ask for an XMPP 1.0 stream (version='1.0'), which STARTTLS needs"),
  {
    group: 'client',
    name: 'a 10 MB stream header: cut past 4096 characters without a tag ending',
    async run(t, arena) {
      const c = await arena.client();
      c.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAMS}' to='${DOMAIN}' pad='`);
      c.write(Buffer.alloc(10 * 1024 * 1024, 'x'));
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), ourError('policy-violation',
        `your client sent too much: more than 4096 characters without a tag ending before encryption was set up; ${NOTHING}`, { id: c.id }), 'client: the refusal in words');
      t.equal(arena.socks.requests.length, 0, 'Tor was never asked');
      await arena.serveHonest(t);
    },
  },
  {
    group: 'client',
    name: "the client's JID (from), language and version never leave as given: the header is rewritten",
    async run(t, arena) {
      const c = await arena.client();
      // Attribute smuggling: a forged xml:lang and an odd version carry data the policy does not forward.
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid).replace(' xml:lang="en"', ` xml:lang="en'&gt;&lt;auth&gt;${arena.secrets.sasl}"`)
        .replace('version="1.0"', `version="1.${'0'.repeat(5000)}"`));
      await c.waitFor(FEATURES_OUT);
      c.write(STARTTLS_IN);
      const proceedEnd = await c.waitFor(PROCEED_OUT);
      const secure = await c.tlsClient(proceedEnd, DOMAIN, arena.pki.ca);
      secure.write(arena.secrets.body);
      t.equal((await readTls(secure, arena.secrets.body.length)).toString(), arena.secrets.body, 'served: a round trip inside TLS');
      const server = arena.upstream.peers[0]!;
      const head = upstreamHeader(DOMAIN, null) + STARTTLS_OUT;
      sameText(t, server.text(0, head.length), head, 'victim (server): no JID, no smuggled language, version 1.0');
      t.ok(isTlsRecords(server.after(head.length)), 'then TLS records only');
      secure.destroy();
      await expectClosed(t, c, 'client');
    },
  },
  {
    group: 'client',
    name: 'a prefixed <tls:starttls/> is understood and re-written canonically',
    async run(t, arena) {
      const c = await afterFeatures(arena);
      c.write("<tls:starttls xmlns:tls='urn:ietf:params:xml:ns:xmpp-tls' junk='1'></tls:starttls>");
      const proceedEnd = await c.waitFor(PROCEED_OUT);
      const secure = await c.tlsClient(proceedEnd, DOMAIN, arena.pki.ca);
      secure.write('x');
      t.equal((await readTls(secure, 1)).toString(), 'x', 'served');
      const server = arena.upstream.peers[0]!;
      sameText(t, server.text(0, (UPSTREAM + STARTTLS_OUT).length), UPSTREAM + STARTTLS_OUT, 'server: the canonical <starttls/>');
      secure.destroy();
      await expectClosed(t, c, 'client');
    },
  },
];

/**
 * Decision: a ClientHello pipelined right behind <starttls/> (XEP-0305 style) is HELD until the
 * server's <proceed/>, checked as TLS records, and sent first after it; it never reaches the
 * server early. Here a real TLS client starts its handshake before <proceed/> arrives.
 */
function pipelinedClientHello(): Scenario {
  let written: () => void = () => {};
  const helloWritten = new Promise<void>((resolve) => {
    written = resolve;
  });
  const beforeProceed: Buffer[] = [];
  return {
    group: 'client',
    name: 'a real ClientHello pipelined with <starttls/> (XEP-0305 style) is held until <proceed/>',
    arena: {
      server: async (peer, pki) => {
        await peer.waitFor('>', await peer.waitFor('<stream:stream'));
        peer.write(serverHeaderIn(DOMAIN) + FEATURES_REQUIRED_IN);
        const at = await peer.waitFor(STARTTLS_OUT);
        // Proceed only once the client's ClientHello is on the wire to the daemon.
        await helloWritten;
        await new Promise((resolve) => setImmediate(resolve));
        beforeProceed.push(Buffer.from(peer.received));
        peer.write(PROCEED_IN);
        peer.tlsServer(at, pki.key, pki.cert);
      },
    },
    async run(t: Test, arena: Arena) {
      const c = await afterFeatures(arena);
      const featuresEnd = c.received.length;
      c.write(STARTTLS_IN);
      const sentBefore = c.sent.length;
      const { secure, connected } = c.tlsClientNow(featuresEnd + PROCEED_OUT.length, DOMAIN, arena.pki.ca);
      await c.waitForSent(sentBefore);
      written();
      await connected;
      const ping = randomBytes(16).toString('hex');
      secure.write(ping);
      t.equal((await readTls(secure, ping.length)).toString(), ping, 'TLS end to end after the held ClientHello');
      sameText(t, c.text(0, featuresEnd + PROCEED_OUT.length), serverHeaderOut(DOMAIN) + FEATURES_OUT + PROCEED_OUT, 'client: the negotiation');
      const server = arena.upstream.peers[0]!;
      t.equal(beforeProceed[0]?.toString(), UPSTREAM + STARTTLS_OUT, 'server: before its <proceed/>, not one byte of the ClientHello');
      const clientTls = c.sent.subarray(sentBefore);
      const after = server.after((UPSTREAM + STARTTLS_OUT).length);
      t.ok(after.subarray(0, clientTls.length).equals(clientTls), 'server: after <proceed/>, the ClientHello first and every TLS byte after it, byte for byte');
      t.ok(arena.daemon.logs().some((l) => l.msg === 'TLS started' && typeof l.held === 'number' && l.held > 0), 'the daemon held it');
      secure.destroy();
      await expectClosed(t, c, 'client');
    },
  };
}
