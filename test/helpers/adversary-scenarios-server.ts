/**
 * Server-side attackers: a hostile server, or a man in the middle between Tor's exit and the
 * server, before TLS. The victim is the client: it must get nothing beyond the canonical header,
 * STARTTLS-required features and <proceed/>, then a stream error with words. The attacker (the
 * server) must get nothing beyond the canonical header and <starttls/>, then a close.
 */
import {
  clientHeaderIn, DOMAIN, FAILURE_IN, FEATURES_OUT, FEATURES_PLAIN_IN, FEATURES_REQUIRED_IN, FEATURES_RICH_IN, honestServer, ourError,
  PROCEED_IN, PROCEED_OUT, serverHeaderIn, serverHeaderOut, STARTTLS_IN, STARTTLS_OUT, upstreamHeader, upstreamOpening, type ServerScript,
} from './adversary-arena.js';
import { readTls, type Peer } from './adversary-peers.js';
import { expectClosed, sameText, isTlsRecords, TLS_HANDSHAKE_START, type Scenario } from './adversary-scenario.js';

const UPSTREAM = upstreamHeader(DOMAIN);
/** Our header and `<starttls/>`: what the server gets before it answers (pipelined). */
const OPENING = upstreamOpening(DOMAIN);
const NOT_TLS = 'the server sent';

/** Answers the client's header with `reply`, then does `then` (if any) after <starttls/>. */
function hostile(reply: string, afterStartTls?: (peer: Peer, at: number) => Promise<void> | void): ServerScript {
  return async (peer) => {
    const open = await peer.waitFor('<stream:stream');
    await peer.waitFor('>', open);
    peer.write(reply);
    if (!afterStartTls) return;
    const at = await peer.waitFor(STARTTLS_OUT);
    await afterStartTls(peer, at);
  };
}

/** A client doing everything right: header (with its JID), STARTTLS when offered, then real TLS. */
async function politeClient(c: Peer, secrets: { jid: string }): Promise<{ featuresEnd?: number; proceedEnd?: number }> {
  c.write(clientHeaderIn(DOMAIN, secrets.jid));
  const featuresEnd = await c.waitFor(FEATURES_OUT).catch(() => undefined);
  if (featuresEnd === undefined) return {};
  c.write(STARTTLS_IN);
  const proceedEnd = await c.waitFor(PROCEED_OUT, featuresEnd).catch(() => undefined);
  return { featuresEnd, ...(proceedEnd !== undefined ? { proceedEnd } : {}) };
}

const refusedAfterHeader = (condition: string, text: string): string => serverHeaderOut(DOMAIN) + ourError(condition, text);
const refusedAfterFeatures = (condition: string, text: string): string => serverHeaderOut(DOMAIN) + FEATURES_OUT + ourError(condition, text);

export const serverScenarios: Scenario[] = [
  {
    group: 'server',
    name: 'STARTTLS stripped from the features, PLAIN offered (downgrade)',
    arena: { server: hostile(serverHeaderIn(DOMAIN) + FEATURES_PLAIN_IN) },
    async run(t, arena) {
      const c = await arena.client();
      await politeClient(c, arena.secrets);
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), refusedAfterHeader('policy-violation',
        'server example.test did not offer STARTTLS; refusing to continue without encryption (nothing was sent to it)'),
      'victim (client): the header, then the refusal in words; never the mechanisms');
      const server = arena.upstream.peers[0]!;
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), OPENING, 'attacker (server): only our opening, no JID');
      await arena.serveHonest(t);
    },
  },
  {
    group: 'server',
    name: 'STARTTLS made optional beside PLAIN, compression and registration: the client is told it is required',
    arena: { server: honestServer({ features: FEATURES_RICH_IN }) },
    async run(t, arena) {
      const c = await arena.client();
      const { proceedEnd } = await politeClient(c, arena.secrets);
      t.ok(proceedEnd, 'the client got <proceed/>');
      const secure = await c.tlsClient(proceedEnd!, DOMAIN, arena.pki.ca);
      secure.write(arena.secrets.body);
      t.equal((await readTls(secure, arena.secrets.body.length)).toString(), arena.secrets.body, 'a round trip inside TLS');
      sameText(t, c.text(0, proceedEnd), serverHeaderOut(DOMAIN) + FEATURES_OUT + PROCEED_OUT, 'victim (client): only STARTTLS, required; no mechanisms, compression or registration');
      const server = arena.upstream.peers[0]!;
      sameText(t, server.text(0, (UPSTREAM + STARTTLS_OUT).length), UPSTREAM + STARTTLS_OUT, 'server: the canonical header and <starttls/>');
      t.ok(isTlsRecords(server.after((UPSTREAM + STARTTLS_OUT).length)), 'server: then TLS records only');
      secure.destroy();
      await expectClosed(t, c, 'client');
    },
  },
  {
    group: 'server',
    name: 'response injection: <proceed/> and plaintext features in the same write',
    arena: { server: hostile(serverHeaderIn(DOMAIN) + FEATURES_REQUIRED_IN, (peer) => peer.write(PROCEED_IN + FEATURES_PLAIN_IN + "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")) },
    async run(t, arena) {
      const c = await arena.client();
      await politeClient(c, arena.secrets);
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), refusedAfterFeatures('policy-violation',
        'the server (or someone on the path) sent unencrypted data right after <proceed/>; it was not passed on'),
      'victim (client): no <proceed/>, no injected features, a refusal in words');
      const server = arena.upstream.peers[0]!;
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), OPENING, 'attacker (server): the canonical header and <starttls/> only');
      await arena.serveHonest(t);
    },
  },
  {
    group: 'server',
    name: 'plaintext after <proceed/> in a later write, instead of a ServerHello',
    arena: {
      server: hostile(serverHeaderIn(DOMAIN) + FEATURES_REQUIRED_IN, async (peer, at) => {
        peer.write(PROCEED_IN);
        await peer.waitFor(TLS_HANDSHAKE_START, at);
        peer.write(FEATURES_PLAIN_IN + "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
      }),
    },
    async run(t, arena) {
      const c = await arena.client();
      const { proceedEnd } = await politeClient(c, arena.secrets);
      t.ok(proceedEnd, 'the client got <proceed/>');
      const tlsError = await c.tlsClient(proceedEnd!, DOMAIN, arena.pki.ca).then(() => undefined, (error: Error) => error);
      t.ok(tlsError, 'the client TLS handshake failed');
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), serverHeaderOut(DOMAIN) + FEATURES_OUT + PROCEED_OUT, 'victim (client): not one byte after <proceed/>');
      const server = arena.upstream.peers[0]!;
      await expectClosed(t, server, 'server');
      const head = UPSTREAM + STARTTLS_OUT;
      sameText(t, server.text(0, head.length), head, 'attacker (server): the canonical negotiation');
      t.ok(isTlsRecords(server.after(head.length)), 'attacker (server): then the ClientHello, as TLS records');
      t.match(arena.daemon.logs().find((l) => l.msg === 'cut: not TLS'), { reason: 'tls-framing-server' }, 'logged as a framing cut');
      await arena.serveHonest(t);
    },
  },
  {
    group: 'server',
    // Regression (found by test/fuzz): saxes closed the element before reporting the mismatch.
    name: '<proceed> closed by a mismatched end tag',
    arena: { server: hostile(serverHeaderIn(DOMAIN) + FEATURES_REQUIRED_IN, (peer) => peer.write("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'></proceeX>")) },
    async run(t, arena) {
      const c = await arena.client();
      await politeClient(c, arena.secrets);
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), refusedAfterFeatures('not-well-formed',
        'the server sent XML that is not well-formed (unexpected close tag) before encryption was set up; nothing of it was passed on'),
      'victim (client): no <proceed/>, a refusal in words');
      const server = arena.upstream.peers[0]!;
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), OPENING, 'attacker (server)');
    },
  },
  answersStartTlsWith('<failure/> in answer to <starttls/>', FAILURE_IN + '</stream:stream>',
    'server example.test refused to start TLS (<failure/>); closing rather than continuing without encryption'),
  {
    group: 'server',
    name: 'a stream error before TLS is passed on as condition and text only',
    arena: {
      server: hostile(serverHeaderIn(DOMAIN) +
        "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" +
        "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en' evil='1'>no such host &lt;here&gt; &amp; there</text>" +
        "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>" +
        "<app-error xmlns='urn:example:app' href='http://attacker.example/'/></stream:error></stream:stream>"),
    },
    async run(t, arena) {
      const c = await arena.client();
      await politeClient(c, arena.secrets);
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), serverHeaderOut(DOMAIN) +
        "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" +
        "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>no such host &lt;here&gt; &amp; there</text></stream:error></stream:stream>",
      'victim (client): the condition and its text, nothing else the server put in the error');
      const server = arena.upstream.peers[0]!;
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), OPENING, 'attacker (server): our opening only');
    },
  },
  {
    group: 'server',
    name: 'a stream error with an unknown condition becomes undefined-condition',
    arena: {
      server: hostile(serverHeaderIn(DOMAIN) +
        "<stream:error><made-up xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>go away</text></stream:error>"),
    },
    async run(t, arena) {
      const c = await arena.client();
      await politeClient(c, arena.secrets);
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), serverHeaderOut(DOMAIN) +
        "<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>" +
        "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>go away</text></stream:error></stream:stream>", 'victim (client)');
    },
  },
  {
    group: 'server',
    name: 'see-other-host before TLS is not passed on (following it would leave Tor)',
    arena: {
      server: hostile(serverHeaderIn(DOMAIN) +
        "<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>attacker.example:5222</see-other-host></stream:error>"),
    },
    async run(t, arena) {
      const c = await arena.client();
      await politeClient(c, arena.secrets);
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), refusedAfterHeader('policy-violation',
        'server example.test told your client to connect to another host (see-other-host) before encryption was set up; ' +
        'the proxy does not pass that on, since following it could leave Tor'), 'victim (client): no redirect reaches it');
      t.notOk(c.received.includes('attacker.example'), 'the redirect target never reaches the client');
    },
  },
  answersStartTlsWith('features again in answer to <starttls/>', FEATURES_PLAIN_IN,
    'server example.test sent <features> instead of <proceed/> in answer to <starttls/>; refusing to continue without encryption'),
  {
    group: 'server',
    name: 'compression offered before TLS (CVE-2014-8760 class): never shown, never negotiated',
    arena: {
      server: hostile(serverHeaderIn(DOMAIN) +
        "<stream:features><compression xmlns='http://jabber.org/features/compress'><method>zlib</method></compression>" +
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"),
    },
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await c.waitFor(FEATURES_OUT);
      // A client that asks for compression anyway (as ejabberd's bypass needed).
      c.write("<compress xmlns='http://jabber.org/protocol/compress'><method>zlib</method></compress>");
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), refusedAfterFeatures('policy-violation',
        'your client asked for compression before encryption was set up; nothing was sent to the server'), 'client: compression never offered, the request refused');
      const server = arena.upstream.peers[0]!;
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), OPENING, 'server: never got <compress>');
    },
  },
  {
    group: 'server',
    name: 'compression pushed unasked (<compressed/>) instead of <proceed/>',
    arena: { server: hostile(serverHeaderIn(DOMAIN) + FEATURES_REQUIRED_IN, (peer) => peer.write("<compressed xmlns='http://jabber.org/protocol/compress'/>")) },
    async run(t, arena) {
      const c = await arena.client();
      await politeClient(c, arena.secrets);
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), refusedAfterFeatures('policy-violation',
        'server example.test sent <compressed> instead of <proceed/> in answer to <starttls/>; refusing to continue without encryption'), 'victim (client)');
    },
  },
  {
    group: 'server',
    name: 'a server that never answers: the negotiation budget ends it',
    arena: { server: async () => {}, daemon: { negotiationTimeoutMs: 700 } },
    async run(t, arena) {
      const c = await arena.client();
      const started = Date.now();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await expectClosed(t, c, 'client');
      const elapsed = Date.now() - started;
      sameText(t, c.text(), ourError('connection-timeout', 'encryption was not set up within 1 second; closing the connection', { id: c.id, from: DOMAIN }),
        'client: our own header, then the timeout in words');
      t.ok(elapsed >= 650 && elapsed < 5000, `cut after the budget (${elapsed} ms)`);
      const server = await arena.upstream.peer(0);
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), OPENING, 'server: our opening only');
      await arena.serveHonest(t);
    },
  },
  {
    group: 'server',
    name: 'a server that drips one byte at a time: the budget is not extended by the drip',
    arena: {
      daemon: { negotiationTimeoutMs: 700 },
      server: async (peer) => {
        await peer.waitFor('>', await peer.waitFor('<stream:stream'));
        const reply = Buffer.from(serverHeaderIn(DOMAIN) + FEATURES_REQUIRED_IN);
        let i = 0;
        const timer = setInterval(() => {
          if (i < reply.length && !peer.socket.destroyed) peer.write(reply.subarray(i, ++i));
        }, 20);
        await peer.closed;
        clearInterval(timer);
      },
    },
    async run(t, arena) {
      const c = await arena.client();
      const started = Date.now();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await expectClosed(t, c, 'client');
      const elapsed = Date.now() - started;
      sameText(t, c.text(), ourError('connection-timeout', 'encryption was not set up within 1 second; closing the connection', { id: c.id, from: DOMAIN }),
        'client: none of the dripped bytes, our own header and the timeout');
      t.ok(elapsed >= 650 && elapsed < 3000, `cut at the budget, not after the drip (${elapsed} ms)`);
      const server = await arena.upstream.peer(0);
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), OPENING, 'server: our opening only');
    },
  },
  {
    group: 'server',
    name: 'a server that sends 10 MB of features: cut past 128 elements',
    arena: {
      server: async (peer) => {
        await peer.waitFor('>', await peer.waitFor('<stream:stream'));
        peer.write(serverHeaderIn(DOMAIN) + '<stream:features>');
        const block = Buffer.from("<x xmlns='urn:example:flood'/>".repeat(4096));
        for (let sent = 0; sent < 10 * 1024 * 1024 && !peer.socket.destroyed; sent += block.length) {
          if (!peer.socket.write(block)) await new Promise((resolve) => peer.socket.once('drain', resolve).once('close', resolve));
        }
      },
    },
    async run(t, arena) {
      const c = await arena.client();
      await politeClient(c, arena.secrets);
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), refusedAfterHeader('policy-violation',
        'the server sent too much: more than 128 elements before encryption was set up; nothing of it was passed on'), 'victim (client): none of the flood');
      const server = arena.upstream.peers[0]!;
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), OPENING, 'attacker (server): our opening, then cut');
      await arena.serveHonest(t);
    },
  },
  {
    group: 'server',
    name: 'a TLS alert instead of a ServerHello',
    arena: {
      server: hostile(serverHeaderIn(DOMAIN) + FEATURES_REQUIRED_IN, async (peer, at) => {
        peer.write(PROCEED_IN);
        await peer.waitFor(TLS_HANDSHAKE_START, at);
        peer.write(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]));
      }),
    },
    async run(t, arena) {
      const c = await arena.client();
      const { proceedEnd } = await politeClient(c, arena.secrets);
      const tlsError = await c.tlsClient(proceedEnd ?? 0, DOMAIN, arena.pki.ca).then(() => undefined, (error: Error) => error);
      t.ok(tlsError, 'the TLS handshake failed');
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), serverHeaderOut(DOMAIN) + FEATURES_OUT + PROCEED_OUT, 'client: nothing after <proceed/> (the first server record must be a handshake)');
      t.match(arena.daemon.logs().find((l) => l.msg === 'cut: not TLS'), { reason: 'tls-framing-server' });
    },
  },
  {
    group: 'server',
    name: 'garbage instead of a ServerHello',
    arena: {
      server: hostile(serverHeaderIn(DOMAIN) + FEATURES_REQUIRED_IN, async (peer, at) => {
        peer.write(PROCEED_IN);
        await peer.waitFor(TLS_HANDSHAKE_START, at);
        peer.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
      }),
    },
    async run(t, arena) {
      const c = await arena.client();
      const { proceedEnd } = await politeClient(c, arena.secrets);
      const tlsError = await c.tlsClient(proceedEnd ?? 0, DOMAIN, arena.pki.ca).then(() => undefined, (error: Error) => error);
      t.ok(tlsError, 'the TLS handshake failed');
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), serverHeaderOut(DOMAIN) + FEATURES_OUT + PROCEED_OUT, 'client: not one garbage byte');
      t.match(arena.daemon.logs().find((l) => l.msg === 'cut: not TLS'), { reason: 'tls-framing-server' });
      await arena.serveHonest(t);
    },
  },
  {
    group: 'server',
    name: 'a stanza (with a body) before the features',
    arena: {
      server: async (peer) => {
        await peer.waitFor('>', await peer.waitFor('<stream:stream'));
        peer.write(serverHeaderIn(DOMAIN) + "<message from='admin@example.test'><body>your password expired, send it to admin</body></message>");
      },
    },
    async run(t, arena) {
      const c = await arena.client();
      await politeClient(c, arena.secrets);
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), refusedAfterHeader('policy-violation',
        'server example.test sent <message> instead of its stream features; refusing to continue without encryption'), 'victim (client): no stanza');
    },
  },
  {
    group: 'server',
    name: 'without pipelining: <proceed/> before the client asked for STARTTLS',
    arena: { server: hostile(serverHeaderIn(DOMAIN) + FEATURES_REQUIRED_IN + PROCEED_IN), daemon: { pipelining: false } },
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), refusedAfterFeatures('policy-violation',
        'server example.test sent <proceed> before encryption was set up; refusing to continue without encryption'), 'victim (client): no unasked <proceed/>');
      const server = arena.upstream.peers[0]!;
      sameText(t, server.text(), UPSTREAM, 'server: the canonical header only (no pipelining)');
    },
  },
  {
    group: 'server',
    name: 'pipelined: header, features and <proceed/> in one flight; the client gets its <proceed/> only when it asks, then TLS',
    arena: {
      server: async (peer, pki) => {
        const at = await peer.waitFor(OPENING);
        peer.write(serverHeaderIn(DOMAIN) + FEATURES_REQUIRED_IN + PROCEED_IN);
        peer.tlsServer(at, pki.key, pki.cert);
      },
    },
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      const featuresEnd = await c.waitFor(FEATURES_OUT);
      const server = arena.upstream.peers[0]!;
      await server.waitForSent((serverHeaderIn(DOMAIN) + FEATURES_REQUIRED_IN + PROCEED_IN).length - 1);
      sameText(t, c.text(), serverHeaderOut(DOMAIN) + FEATURES_OUT, 'client: header and features, no <proceed/> it did not ask for');
      c.write(STARTTLS_IN);
      const proceedEnd = await c.waitFor(PROCEED_OUT, featuresEnd);
      const secure = await c.tlsClient(proceedEnd, DOMAIN, arena.pki.ca);
      secure.write(arena.secrets.body);
      t.equal((await readTls(secure, arena.secrets.body.length)).toString(), arena.secrets.body, 'TLS end to end');
      sameText(t, server.text(0, OPENING.length), OPENING, 'server: our opening, once, then TLS');
      secure.destroy();
      await expectClosed(t, c, 'client');
    },
  },
  {
    group: 'server',
    name: 'a DOCTYPE with an entity-expansion bomb',
    arena: {
      server: hostile("<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol \"lol\">" +
        Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('') +
        ']>' + serverHeaderIn(DOMAIN).slice("<?xml version='1.0'?>".length) + '<stream:features>&lol9;</stream:features>'),
    },
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), ourError('restricted-xml',
        `${NOT_TLS} XML that XMPP forbids: a DOCTYPE is not allowed in XMPP (RFC 6120 §11.1) before encryption was set up; nothing of it was passed on`,
        { id: c.id, from: DOMAIN }), 'client: our own header and the refusal; nothing expanded, nothing passed');
    },
  },
  {
    group: 'server',
    name: 'not an XMPP server (an SSH banner)',
    arena: { server: hostile('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n') },
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await expectClosed(t, c, 'client');
      const head = ourError('not-well-formed', 'X', { id: c.id, from: DOMAIN }).split('<stream:error>')[0]!;
      sameText(t, c.text(0, head.length), head, 'client: our own header');
      t.match(c.text(head.length), /^<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>the server sent XML that is not well-formed \([^<)]+\) before encryption was set up; nothing of it was passed on<\/text><\/stream:error><\/stream:stream>$/,
        'client: not-well-formed, in words');
      t.notOk(c.received.includes('SSH-2.0'), 'client: not one banner byte');
    },
  },
  {
    group: 'server',
    name: 'a server header in the wrong namespace (jabber:server)',
    arena: { server: hostile(serverHeaderIn(DOMAIN).replace("xmlns='jabber:client'", "xmlns='jabber:server'") + FEATURES_REQUIRED_IN) },
    async run(t, arena) {
      const c = await arena.client();
      await politeClient(c, arena.secrets);
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), ourError('invalid-namespace', 'the server did not answer with an XMPP client stream', { id: c.id, from: DOMAIN }), 'client');
    },
  },
];

/**
 * A server that offers STARTTLS and answers the client's <starttls/> with something else: the
 * client is refused with `words` and the server got nothing but our header and <starttls/>.
 */
function answersStartTlsWith(name: string, answer: string, words: string): Scenario {
  return {
    group: 'server',
    name,
    arena: { server: hostile(serverHeaderIn(DOMAIN) + FEATURES_REQUIRED_IN, (peer) => peer.write(answer)) },
    async run(t, arena) {
      const c = await arena.client();
      await politeClient(c, arena.secrets);
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), refusedAfterFeatures('policy-violation', words), 'victim (client)');
      const server = arena.upstream.peers[0]!;
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), OPENING, 'attacker (server)');
    },
  };
}
