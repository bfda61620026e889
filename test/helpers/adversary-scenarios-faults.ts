/**
 * Faults: Tor's SOCKS port down at start, going down and coming back, crashing under open
 * connections; every SOCKS reply code; upstream and client resets before and after TLS. The
 * affected client gets a clear error (or, inside TLS, a close and nothing else); the daemon keeps
 * serving the others.
 */
import type { Test } from 'tap';
import {
  clientHeaderIn, DOMAIN, FEATURES_OUT, FEATURES_REQUIRED_IN, HONEST_DOMAIN, honestServer, ourError, PROCEED_OUT, serverHeaderIn,
  serverHeaderOut, STARTTLS_IN, STARTTLS_OUT, upstreamHeader, upstreamOpening, type Arena, type ArenaOptions, type ServerScript,
} from './adversary-arena.js';
import { readTls, type Peer } from './adversary-peers.js';
import { expectClosed, sameText, isTlsRecords, type Scenario } from './adversary-scenario.js';
import { startRawTcpServer, startTorSwitch, type RawTcpServer, type TorSwitch } from './adversary-tor.js';

const ONION = '6voaf7iamjpufgwoulypzwwecsm2nu7j5jpgadav2rfqixmpl4d65kid.onion';
const UPSTREAM = upstreamHeader(DOMAIN);
/** Our header and `<starttls/>`: what the server gets before it answers (pipelined). */
const OPENING = upstreamOpening(DOMAIN);

/** RFC 1928 §6 and Tor's extended replies (tor ≥ 0.4.3 with ExtendedErrors), with the words the user must get. */
const SOCKS_REPLIES: ReadonlyArray<readonly [number, string, string]> = [
  [0x01, 'socks-general-failure', 'Tor could not make the connection (general failure)'],
  [0x02, 'socks-not-allowed', 'Tor refused the connection (not allowed by its rules)'],
  [0x03, 'socks-network-unreachable', 'Tor could not reach the network'],
  [0x04, 'socks-host-unreachable', 'Tor could not reach the host'],
  [0x05, 'socks-connection-refused', 'the server refused the connection (nothing listens on that port)'],
  [0x06, 'socks-ttl-expired', 'the connection through Tor timed out'],
  [0x07, 'socks-command-not-supported', 'Tor does not support the request'],
  [0x08, 'socks-address-not-supported', 'Tor does not support this kind of address'],
  [0xf0, 'onion-not-found', 'Tor found no descriptor for this onion service: it is offline, gone, or the address is wrong'],
  [0xf1, 'onion-descriptor-invalid', "the onion service's descriptor is invalid"],
  [0xf2, 'onion-intro-failed', "Tor could not reach the onion service's introduction points: the service is probably down"],
  [0xf3, 'onion-rendezvous-failed', 'Tor could not complete the rendezvous with the onion service'],
  [0xf4, 'onion-auth-missing', 'the onion service requires client authorization, which is not configured'],
  [0xf5, 'onion-auth-wrong', 'the onion service refused our client authorization'],
  [0xf6, 'onion-address-invalid', 'Tor says the onion address is invalid'],
  [0xf7, 'onion-intro-timeout', 'introduction to the onion service timed out: the service is probably down'],
  [0x09, 'socks-unknown-reply', 'Tor answered with an unknown SOCKS reply 0x9'],
];

function socksReply([code, reason, words]: readonly [number, string, string]): Scenario {
  const hex = `0x${code.toString(16).padStart(2, '0')}`;
  const onion = code >= 0xf0;
  return {
    group: 'fault',
    name: `SOCKS reply ${hex} (${reason})`,
    arena: onion ? { entries: [{ domain: DOMAIN, onion: ONION }, { domain: HONEST_DOMAIN, host: `xmpp.${HONEST_DOMAIN}` }] } : {},
    async run(t, arena) {
      arena.socks.setReply(code);
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await expectClosed(t, c, 'client');
      const where = onion ? 'the onion service' : 'the server through a Tor exit';
      sameText(t, c.text(), ourError('remote-connection-failed', `could not reach ${where}: ${words} (SOCKS reply ${hex}); nothing was sent`, { id: c.id, from: DOMAIN }),
        'the client is told what Tor said, in words');
      t.match(arena.daemon.logs().find((l) => l.msg === 'refused'), { reason }, 'a stable reason code in the log');
      t.equal(arena.upstream.peers.length, 0, 'no server was reached');
      arena.socks.setReply(undefined);
      await arena.serveHonest(t);
    },
  };
}

/** Tor's port behind a switch that the scenario turns off and on. */
function withSwitch(up: boolean, extra: ArenaOptions = {}): { arena: ArenaOptions; tor: () => TorSwitch } {
  let current: TorSwitch | undefined;
  return {
    arena: {
      ...extra,
      torPort: async (fixturePort: number, t: Test) => {
        current = await startTorSwitch(fixturePort, { up });
        t.teardown(() => current?.close());
        return current.port;
      },
    },
    tor: () => current!,
  };
}

/** Tor's port replaced by a raw server that misbehaves. */
function withRawTor(behave: Parameters<typeof startRawTcpServer>[0], extra: ArenaOptions = {}): { arena: ArenaOptions; tor: () => RawTcpServer } {
  let current: RawTcpServer | undefined;
  return {
    arena: {
      ...extra,
      torPort: async (_fixturePort: number, t: Test) => {
        current = await startRawTcpServer(behave);
        t.teardown(() => current?.close());
        return current.port;
      },
    },
    tor: () => current!,
  };
}

/** A client through STARTTLS and into TLS with example.test, echo checked; left open. */
async function openRelay(t: Test, arena: Arena, label: string): Promise<{ c: Peer; proceedEnd: number; secure: import('node:tls').TLSSocket }> {
  const c = await arena.client();
  c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
  await c.waitFor(FEATURES_OUT);
  c.write(STARTTLS_IN);
  const proceedEnd = await c.waitFor(PROCEED_OUT);
  const secure = await c.tlsClient(proceedEnd, DOMAIN, arena.pki.ca);
  secure.write(`${label}-1`);
  t.equal((await readTls(secure, label.length + 2)).toString(), `${label}-1`, `${label}: relaying`);
  return { c, proceedEnd, secure };
}

function torNotRunning(c: Peer & { id: string }, port: number): string {
  return ourError('remote-connection-failed', `could not reach the server through a Tor exit: Tor is not running at 127.0.0.1:${port} (connection refused); nothing was sent`,
    { id: c.id, from: DOMAIN });
}

const silentServer: ServerScript = async (peer) => {
  await peer.closed;
};
const featuresThenSilent: ServerScript = async (peer) => {
  await peer.waitFor('>', await peer.waitFor('<stream:stream'));
  peer.write(serverHeaderIn(DOMAIN) + FEATURES_REQUIRED_IN);
  await peer.closed;
};

function torDownAtStart(): Scenario {
  const sw = withSwitch(false);
  return {
    group: 'fault',
    name: "Tor's SOCKS port down at start, then up",
    arena: sw.arena,
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), torNotRunning(c, sw.tor().port), 'the client is told Tor is not running');
      await sw.tor().up();
      await arena.serveHonest(t, 'once Tor is up, a client');
    },
  };
}

function torListenerDown(): Scenario {
  const sw = withSwitch(true);
  return {
    group: 'fault',
    name: 'Tor stops accepting while connections are open, then comes back',
    arena: sw.arena,
    async run(t, arena) {
      const a = await openRelay(t, arena, 'first');
      const b = await openRelay(t, arena, 'second');
      await sw.tor().down();
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await expectClosed(t, c, 'new client while Tor is down');
      sameText(t, c.text(), torNotRunning(c, sw.tor().port), 'a new client is told Tor is not running');
      a.secure.write('first-2');
      t.equal((await readTls(a.secure, 7)).toString(), 'first-2', 'open relays keep working');
      await sw.tor().up();
      await arena.serveHonest(t, 'once Tor is back, a client');
      b.secure.write('second-2');
      t.equal((await readTls(b.secure, 8)).toString(), 'second-2', 'open relays still work');
      a.secure.destroy();
      b.secure.destroy();
      await expectClosed(t, a.c, 'first');
      await expectClosed(t, b.c, 'second');
    },
  };
}

function torCrash(): Scenario {
  const sw = withSwitch(true);
  return {
    group: 'fault',
    name: 'Tor crashes under open connections (every stream reset), then restarts',
    arena: sw.arena,
    async run(t, arena) {
      const relays = [await openRelay(t, arena, 'first'), await openRelay(t, arena, 'second')];
      const negotiating = await arena.client();
      negotiating.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      const featuresEnd = await negotiating.waitFor(FEATURES_OUT);
      await sw.tor().down({ crash: true });
      for (const [i, r] of relays.entries()) {
        await expectClosed(t, r.c, `relay ${i}`);
        t.ok(isTlsRecords(r.c.after(r.proceedEnd)), `relay ${i}: after <proceed/>, TLS records only, no words in clear`);
      }
      await expectClosed(t, negotiating, 'negotiating client');
      sameText(t, negotiating.text(featuresEnd), ourError('remote-connection-failed', 'the connection to the server broke before encryption was set up'),
        'a client still negotiating is told the connection broke');
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await expectClosed(t, c, 'client while Tor is down');
      sameText(t, c.text(), torNotRunning(c, sw.tor().port), 'a new client is told Tor is not running');
      await sw.tor().up();
      await arena.serveHonest(t, 'after the restart, a client');
    },
  };
}

/**
 * `expected`: what the client gets; with several, any one of them (a reset that reaches the
 * daemon through Tor's socket may arrive as a reset or as a close, both told in words).
 */
function upstreamReset(name: string, script: ServerScript, drive: (t: Test, arena: Arena, c: Peer) => Promise<number>, expected: string | readonly string[]): Scenario {
  const sw = withSwitch(true, { server: script });
  return {
    group: 'fault',
    name,
    arena: sw.arena,
    async run(t, arena) {
      const c = await arena.client();
      const from = await drive(t, arena, c);
      sw.tor().resetAll();
      await expectClosed(t, c, 'client');
      const id = (c as Peer & { id: string }).id;
      const choices = (typeof expected === 'string' ? [expected] : expected).map((e) => e.replace('{id}', id));
      const got = c.text(from);
      sameText(t, got, choices.find((e) => e === got) ?? choices[0]!, 'the client is told the connection broke');
      await arena.serveHonest(t);
    },
  };
}

function upstreamResetMidRelay(): Scenario {
  const sw = withSwitch(true);
  return {
    group: 'fault',
    name: 'upstream reset mid-relay',
    arena: sw.arena,
    async run(t, arena) {
      const r = await openRelay(t, arena, 'relay');
      sw.tor().resetAll();
      await expectClosed(t, r.c, 'client');
      t.ok(isTlsRecords(r.c.after(r.proceedEnd)), 'client: TLS records only after <proceed/>');
      t.match(arena.daemon.logs().find((l) => l.msg === 'closed'), { phase: 'Relaying', reason: 'server-ECONNRESET' });
      await arena.serveHonest(t);
    },
  };
}

function clientReset(name: string, drive: (t: Test, arena: Arena) => Promise<Peer>, script?: ServerScript): Scenario {
  return {
    group: 'fault',
    name,
    arena: script ? { server: script } : {},
    async run(t, arena) {
      const c = await drive(t, arena);
      const server = await arena.upstream.peer(0);
      const had = server.received.length;
      c.reset();
      await expectClosed(t, server, 'server');
      t.ok(server.received.length === had || isTlsRecords(server.after((UPSTREAM + STARTTLS_OUT).length)), 'server: nothing but what it had, or TLS records');
      await arena.serveHonest(t);
    },
  };
}

function clientResetWhileConnecting(): Scenario {
  const raw = withRawTor(() => {}, { daemon: { connectTimeoutMs: 60_000 } });
  return {
    group: 'fault',
    name: 'client resets while Tor is still connecting: the daemon lets go of Tor at once',
    arena: raw.arena,
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await raw.tor().firstData();
      const started = Date.now();
      c.reset();
      const drained = await raw.tor().drained(5000).then(() => true, () => false);
      t.ok(drained, `the daemon closed its Tor connection when the client left (${Date.now() - started} ms), not after the 60 s connect timeout`);
      t.equal(arena.daemon.proxy.connections, 0, 'no session left');
    },
  };
}

function misbehavingTor(name: string, behave: Parameters<typeof startRawTcpServer>[0], text: (port: number) => string, daemon = {}): Scenario {
  const raw = withRawTor(behave, { daemon });
  return {
    group: 'fault',
    name,
    arena: raw.arena,
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), ourError('remote-connection-failed', text(raw.tor().port), { id: c.id, from: DOMAIN }), 'the client is told, in words');
      await raw.tor().drained();
      t.pass('the daemon closed its Tor connection');
    },
  };
}

export const faultScenarios: Scenario[] = [
  torDownAtStart(),
  torListenerDown(),
  torCrash(),
  ...SOCKS_REPLIES.map(socksReply),
  upstreamReset('upstream reset mid-negotiation, before the server answered', silentServer, async (_t, arena, c) => {
    c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
    await (await arena.upstream.peer(0)).waitFor(OPENING);
    return 0;
  }, [
    ourError('remote-connection-failed', 'the connection to the server broke before encryption was set up', { id: '{id}', from: DOMAIN }),
    ourError('remote-connection-failed', 'the server closed the connection before encryption was set up', { id: '{id}', from: DOMAIN }),
  ]),
  upstreamReset('upstream reset mid-negotiation, after <starttls/>', featuresThenSilent, async (_t, arena, c) => {
    c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
    const at = await c.waitFor(FEATURES_OUT);
    c.write(STARTTLS_IN);
    await (await arena.upstream.peer(0)).waitFor(STARTTLS_OUT);
    return at;
  }, ourError('remote-connection-failed', 'the connection to the server broke before encryption was set up')),
  {
    group: 'fault',
    name: 'the server hangs up after its features',
    arena: {
      server: async (peer) => {
        await peer.waitFor('>', await peer.waitFor('<stream:stream'));
        peer.socket.end(serverHeaderIn(DOMAIN) + FEATURES_REQUIRED_IN);
      },
    },
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), serverHeaderOut(DOMAIN) + FEATURES_OUT + ourError('remote-connection-failed', 'the server closed the connection before encryption was set up'),
        'the client is told the server hung up');
    },
  },
  upstreamResetMidRelay(),
  clientReset('client resets mid-negotiation', async (_t, arena) => {
    const c = await arena.client();
    c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
    await c.waitFor(FEATURES_OUT);
    return c;
  }),
  clientReset('client resets after <starttls/>, before <proceed/>', async (_t, arena) => {
    const c = await arena.client();
    c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
    await c.waitFor(FEATURES_OUT);
    c.write(STARTTLS_IN);
    await (await arena.upstream.peer(0)).waitFor(STARTTLS_OUT);
    return c;
  }, featuresThenSilent),
  clientReset('client resets mid-relay', async (t, arena) => (await openRelay(t, arena, 'relay')).c, honestServer()),
  clientResetWhileConnecting(),
  misbehavingTor('Tor accepts and never answers: the connect budget ends it', () => {},
    () => 'could not reach the server through a Tor exit: Tor did not connect within 2 seconds; nothing was sent', { connectTimeoutMs: 2000 }),
  misbehavingTor("Tor's port answers garbage (not SOCKS5)", (socket) => socket.end('HTTP/1.0 501 Tor is not an HTTP Proxy\r\n\r\n'),
    (port) => `could not reach the server through a Tor exit: Tor's SOCKS port at 127.0.0.1:${port} did not complete the SOCKS5 handshake; nothing was sent`),
  misbehavingTor("Tor's port hangs up at once", (socket) => socket.destroy(),
    (port) => `could not reach the server through a Tor exit: Tor's SOCKS port at 127.0.0.1:${port} did not complete the SOCKS5 handshake; nothing was sent`),
  misbehavingTor('Tor refuses the isolation credentials', (socket) => {
    socket.once('data', () => {
      socket.write(Buffer.from([5, 2]));
      socket.once('data', () => socket.end(Buffer.from([1, 1])));
    });
  }, (port) => `could not reach the server through a Tor exit: Tor's SOCKS port at 127.0.0.1:${port} did not complete the SOCKS5 handshake; nothing was sent`),
];
