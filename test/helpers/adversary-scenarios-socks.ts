/**
 * Attacks on the SOCKS door: pipelined and plaintext-leaking clients, truncated, oversized and
 * slow handshakes, hostile credentials, destinations that must not be reached (other ports, IP
 * literals, retired domains, a stream for another server), Tor refusing, clients leaving while
 * Tor connects, and a flood of idle SOCKS clients. Both sides are asserted byte for byte: the
 * SOCKS bytes the client got back, and what reached the server (usually nothing).
 */
import { randomBytes } from 'node:crypto';
import type { Test } from 'tap';
import {
  clientHeaderIn, DOMAIN, FEATURES_OUT, HONEST_DOMAIN, ourError, PROCEED_OUT, serverHeaderOut, STARTTLS_IN, STARTTLS_OUT,
  upstreamHeader, type Arena, type ArenaOptions,
} from './adversary-arena.js';
import { readTls, type Peer } from './adversary-peers.js';
import { expectClosed, isTlsRecords, sameText, until, type Scenario } from './adversary-scenario.js';
import { startRawTcpServer, type RawTcpServer } from './adversary-tor.js';

const ONION = '6voaf7iamjpufgwoulypzwwecsm2nu7j5jpgadav2rfqixmpl4d65kid.onion';
const RETIRED = 'retired.test';
const RETIRED_ONION = 'jukrlvyhgguiedqswc5lehrag2fjunfktouuhi4wozxhb6heyzvshuyd.onion';
const NOTHING = 'nothing was sent to the server';

/** A real TLS session at a TLS-only port: relayed, TLS records only both ways, verified against the real domain. */
function realClientHello(port: number, mode: string, label: string): Scenario {
  return {
    group: 'client',
    name: `${label} with a real ClientHello: relayed, TLS records only, verified against the real domain`,
    arena: {
      server: async (peer, pki) => {
        peer.tlsServer(0, pki.key, pki.cert);
        await peer.closed;
      },
    },
    async run(t, arena) {
      const c = await arena.socksClient();
      c.write(Buffer.concat([greeting(0), connectName(DOMAIN, port)]));
      const socksEnd = await c.waitFor(OPENED);
      const secure = await c.tlsClient(socksEnd, DOMAIN, arena.pki.ca);
      secure.write(arena.secrets.body);
      t.equal((await readTls(secure, arena.secrets.body.length)).toString(), arena.secrets.body, 'a round trip inside TLS');
      secure.destroy();
      await c.waitForClose();
      const server = await arena.upstream.peer(0);
      t.ok(isTlsRecords(server.received), 'the server got TLS records only, from the first byte');
      t.ok(isTlsRecords(c.after(socksEnd)), 'the client got TLS records only after the SOCKS success');
      t.match(arena.daemon.logs().find((l) => l.msg === 'routing'), { mode }, `routed as ${mode}`);
    },
  };
}

/** RFC 1928 bytes, written out here independently of src. */
export const NO_AUTH = Buffer.from([5, 0]);
const USER_PASS = Buffer.from([5, 2]);
const NO_METHOD = Buffer.from([5, 0xff]);
const AUTH_OK = Buffer.from([1, 0]);
export const reply = (code: number): Buffer => Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
export const greeting = (...methods: number[]): Buffer => Buffer.from([5, methods.length, ...methods]);
export function connectName(host: string | Buffer, port: number): Buffer {
  const name = Buffer.from(host);
  const tail = Buffer.alloc(2);
  tail.writeUInt16BE(port);
  return Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, tail]);
}
function connectAddress(atyp: 1 | 4, address: number[], port: number): Buffer {
  const tail = Buffer.alloc(2);
  tail.writeUInt16BE(port);
  return Buffer.concat([Buffer.from([5, 1, 0, atyp, ...address]), tail]);
}
function userPass(username: Buffer, password: Buffer): Buffer {
  return Buffer.concat([Buffer.from([1, username.length]), username, Buffer.from([password.length]), password]);
}
/** Success: method selection, then the success reply (sent only once Tor connected). */
export const OPENED = Buffer.concat([NO_AUTH, reply(0)]);

export type Client = Peer & { readonly id: string };

/** Byte-for-byte equality of binary data (hex, so a difference is shown where it is). */
function sameBytes(t: Test, actual: Buffer, expected: Buffer, message: string): void {
  sameText(t, actual.toString('hex'), expected.toString('hex'), message);
}

/** No stray bytes from the daemon: the client got exactly `expected`, then the close. */
export async function refusedWith(t: Test, c: Client, expected: Buffer, label: string): Promise<void> {
  await expectClosed(t, c, label);
  sameBytes(t, c.received, expected, `${label}: exactly the SOCKS refusal, nothing else`);
}

export function refusedReason(t: Test, arena: Arena, reason: string): void {
  t.match(arena.daemon.logs().filter((l) => l.msg === 'refused'), [{ reason }], `the log says ${reason}`);
}

/**
 * A by-the-book SOCKS client for honest.test: greeting, CONNECT, STARTTLS, TLS verified against
 * the test CA, a round trip inside it. With `pipelined`, the greeting, the CONNECT and the stream
 * header leave in one write (the daemon must hold the header until Tor connected).
 */
export async function serveHonestSocks(t: Test, arena: Arena, label = 'a SOCKS client', options: { pipelined?: boolean; credentials?: [Buffer, Buffer] } = {}): Promise<void> {
  const before = arena.honest.peers.length;
  const c = await arena.socksClient();
  const header = clientHeaderIn(HONEST_DOMAIN, `someone@${HONEST_DOMAIN}`);
  const hello = options.credentials
    ? Buffer.concat([greeting(0, 2), userPass(...options.credentials)])
    : greeting(0);
  const opened = options.credentials ? Buffer.concat([USER_PASS, AUTH_OK, reply(0)]) : OPENED;
  c.write(Buffer.concat([hello, connectName(HONEST_DOMAIN, 5222), ...(options.pipelined ? [Buffer.from(header)] : [])]));
  const socksEnd = await c.waitFor(opened);
  if (!options.pipelined) c.write(header);
  const featuresEnd = await c.waitFor(FEATURES_OUT, socksEnd);
  c.write(STARTTLS_IN);
  const proceedEnd = await c.waitFor(PROCEED_OUT, featuresEnd);
  const secure = await c.tlsClient(proceedEnd, HONEST_DOMAIN, arena.pki.ca);
  const ping = `ping-${randomBytes(4).toString('hex')}`;
  secure.write(ping);
  const pong = await readTls(secure, ping.length);
  sameBytes(t, c.received.subarray(0, socksEnd), opened, `${label}: the SOCKS success, only after Tor connected`);
  sameText(t, c.text(socksEnd, proceedEnd), serverHeaderOut(HONEST_DOMAIN) + FEATURES_OUT + PROCEED_OUT, `${label}: header, STARTTLS required and <proceed/> before TLS`);
  t.equal(pong.toString(), ping, `${label}: served, a round trip inside TLS verified against the CA`);
  const server = await arena.honest.peer(before);
  const clear = upstreamHeader(HONEST_DOMAIN) + STARTTLS_OUT;
  sameText(t, server.text(0, clear.length), clear, `${label}: the server got only the canonical header and <starttls/> in clear`);
  t.ok(isTlsRecords(server.after(clear.length)), `${label}: then TLS records only`);
  secure.destroy();
  await c.waitForClose();
}

/** A CONNECT the policy refuses before Tor is asked: exactly the SOCKS reply, then the close. */
function refusedConnect(name: string, request: Buffer, code: number, reason: string, arena: ArenaOptions = {}): Scenario {
  return {
    group: 'client',
    name,
    arena,
    async run(t, arena) {
      const c = await arena.socksClient();
      c.write(Buffer.concat([greeting(0), request]));
      await refusedWith(t, c, Buffer.concat([NO_AUTH, reply(code)]), 'client');
      t.equal(arena.socks.requests.length, 0, 'Tor was never asked');
      t.equal(arena.upstream.peers.length, 0, 'no server was reached');
      refusedReason(t, arena, reason);
      await serveHonestSocks(t, arena);
    },
  };
}

/** Tor's port replaced by a raw server (silent unless `behave` says otherwise). */
function withRawTor(daemon: ArenaOptions['daemon'] = {}): { arena: ArenaOptions; tor: () => RawTcpServer } {
  let current: RawTcpServer | undefined;
  return {
    arena: {
      daemon,
      torPort: async (_fixturePort: number, t: Test) => {
        current = await startRawTcpServer(() => {});
        t.teardown(() => current?.close());
        return current.port;
      },
    },
    tor: () => current!,
  };
}

/** Tor's refusals (its own and the onion ones), with the closest RFC 1928 reply the client must get. */
const TOR_REFUSALS: ReadonlyArray<readonly [number, number, string]> = [
  [0x01, 0x01, 'socks-general-failure'],
  [0x02, 0x02, 'socks-not-allowed'],
  [0x03, 0x03, 'socks-network-unreachable'],
  [0x04, 0x04, 'socks-host-unreachable'],
  [0x05, 0x05, 'socks-connection-refused'],
  [0x06, 0x06, 'socks-ttl-expired'],
  // Tor not supporting the daemon's request is not the client's fault: a general failure.
  [0x07, 0x01, 'socks-command-not-supported'],
  [0x08, 0x08, 'socks-address-not-supported'],
  [0x09, 0x01, 'socks-unknown-reply'],
  [0xf0, 0x04, 'onion-not-found'],
  [0xf1, 0x01, 'onion-descriptor-invalid'],
  [0xf2, 0x04, 'onion-intro-failed'],
  [0xf3, 0x04, 'onion-rendezvous-failed'],
  [0xf4, 0x02, 'onion-auth-missing'],
  [0xf5, 0x02, 'onion-auth-wrong'],
  [0xf6, 0x04, 'onion-address-invalid'],
  [0xf7, 0x04, 'onion-intro-timeout'],
];

function torRefuses([code, expected, reason]: readonly [number, number, string]): Scenario {
  const hex = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;
  return {
    group: 'fault',
    name: `direct TLS (5223): Tor refuses with ${hex(code)} (${reason}): the client gets SOCKS reply ${hex(expected)}`,
    arena: { entries: [{ domain: DOMAIN, onion: ONION }, { domain: HONEST_DOMAIN, host: `xmpp.${HONEST_DOMAIN}` }] },
    async run(t, arena) {
      arena.socks.setReply(code);
      const c = await arena.socksClient();
      // Bytes pipelined behind the CONNECT must not reach anyone when Tor refuses.
      c.write(Buffer.concat([greeting(0), connectName(DOMAIN, 5223), Buffer.from(clientHeaderIn(DOMAIN, arena.secrets.jid))]));
      await refusedWith(t, c, Buffer.concat([NO_AUTH, reply(expected)]), 'client');
      t.match(arena.socks.requests, [{ host: ONION, port: 5223, atyp: 'domain' }], 'Tor was asked once, for the mapped onion');
      t.equal(arena.upstream.peers.length, 0, 'no server was reached');
      refusedReason(t, arena, reason);
      arena.socks.setReply(undefined);
      await serveHonestSocks(t, arena);
    },
  };
}

/**
 * At an XMPP port the SOCKS success comes at once (the client speaks XMPP to us next), so Tor's
 * refusal reaches the client as a stream error in Tor's words, and nothing reaches a server.
 */
function torRefusesXmppPort([code, words, reason]: readonly [number, string, string]): Scenario {
  return {
    group: 'fault',
    name: `XMPP port (5222): Tor refuses with 0x${code.toString(16)} (${reason}): SOCKS success at once, then a stream error in Tor's words`,
    arena: { entries: [{ domain: DOMAIN, onion: ONION }, { domain: HONEST_DOMAIN, host: `xmpp.${HONEST_DOMAIN}` }] },
    async run(t, arena) {
      arena.socks.setReply(code);
      const c = await arena.socksClient();
      c.write(Buffer.concat([greeting(0), connectName(DOMAIN, 5222), Buffer.from(clientHeaderIn(DOMAIN, arena.secrets.jid))]));
      await expectClosed(t, c, 'client');
      sameBytes(t, c.received.subarray(0, OPENED.length), OPENED, 'client: the SOCKS success, before Tor was asked');
      t.ok(c.text(OPENED.length).includes("<remote-connection-failed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>") && c.text(OPENED.length).includes(words),
        `client: remote-connection-failed, in Tor's words (${words})`);
      t.match(arena.socks.requests, [{ host: ONION, port: 5222, atyp: 'domain' }], 'Tor was asked once, for the mapped onion');
      t.equal(arena.upstream.peers.length, 0, 'no server was reached');
      refusedReason(t, arena, reason);
      arena.socks.setReply(undefined);
      await serveHonestSocks(t, arena);
    },
  };
}

const IDLE_FLOOD = 1000;
const IDLE_LIMIT = 600;

const scenarios: Scenario[] = [
  {
    group: 'client',
    name: 'greeting, CONNECT, stream header and a plaintext <auth> in one write: refused, nothing forwarded',
    async run(t, arena) {
      const c = await arena.socksClient();
      const auth = `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${arena.secrets.sasl}</auth>`;
      c.write(Buffer.concat([greeting(0), connectName(DOMAIN, 5222), Buffer.from(clientHeaderIn(DOMAIN, arena.secrets.jid) + auth)]));
      await expectClosed(t, c, 'client');
      sameBytes(t, c.received.subarray(0, OPENED.length), OPENED, 'client: the SOCKS success at once (an XMPP port)');
      sameText(t, c.text(OPENED.length), ourError('policy-violation',
        `your client tried to log in (<auth>) before encryption was set up; ${NOTHING}. Set the account to require encryption`, { id: c.id, from: DOMAIN }),
      'client: our own header and the refusal, in words');
      for (const server of arena.upstream.peers) {
        await expectClosed(t, server, 'server');
        sameText(t, server.text(), '', 'victim (server): if Tor connected at all, not one byte');
      }
      t.ok(arena.socks.requests.length <= 1, 'Tor was asked at most once');
      await serveHonestSocks(t, arena, 'a pipelining SOCKS client', { pipelined: true });
    },
  },
  {
    group: 'resource',
    name: 'a truncated greeting (255 methods announced, 100 sent): held within its 257 bytes, cut by the timeout',
    arena: { daemon: { headerTimeoutMs: 700 } },
    async run(t, arena) {
      const c = await arena.socksClient();
      const started = Date.now();
      c.write(Buffer.concat([Buffer.from([5, 255]), Buffer.alloc(100, 0x42)]));
      await expectClosed(t, c, 'client');
      const elapsed = Date.now() - started;
      sameBytes(t, c.received, Buffer.alloc(0), 'client: nothing (a reply during the greeting would read as a method choice)');
      t.ok(elapsed >= 650 && elapsed < 3000, `cut at the handshake budget (${elapsed} ms)`);
      t.equal(arena.socks.requests.length, 0, 'Tor was never asked');
      refusedReason(t, arena, 'socks-timeout');
      await serveHonestSocks(t, arena);
    },
  },
  {
    group: 'resource',
    name: 'a truncated CONNECT (a 200-byte name announced, 50 sent): cut by the timeout, Tor never asked',
    arena: { daemon: { headerTimeoutMs: 700 } },
    async run(t, arena) {
      const c = await arena.socksClient();
      c.write(Buffer.concat([greeting(0), Buffer.from([5, 1, 0, 3, 200]), Buffer.alloc(50, 0x61)]));
      await expectClosed(t, c, 'client');
      sameBytes(t, c.received, Buffer.concat([NO_AUTH, reply(1)]), 'client: method selection, then a general failure');
      t.equal(arena.socks.requests.length, 0, 'Tor was never asked');
      refusedReason(t, arena, 'socks-timeout');
      await serveHonestSocks(t, arena);
    },
  },
  {
    group: 'resource',
    name: 'the longest greeting, credentials and CONNECT RFC 1928/1929 allow (257, 513, 262 bytes), a byte at a time: parsed within the 515-byte bound',
    async run(t, arena) {
      // No message can be longer (every length is one byte), so the handshake never holds more than 515 bytes.
      const methods = Array.from({ length: 255 }, (_, i) => (i === 254 ? 2 : 0x80 + (i % 0x7f)));
      const name = Buffer.from(`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(58)}.test`);
      t.equal(name.length, 255, 'a 255-byte destination name');
      const credentials = userPass(Buffer.from(arena.secrets.local.padEnd(255, 'u')), Buffer.from(arena.secrets.password.padEnd(255, 'p')));
      const c = await arena.socksClient();
      const request = Buffer.concat([Buffer.from([5, 255, ...methods]), credentials, connectName(name, 5222)]);
      t.equal(request.length, 257 + 513 + 262, 'each message at its maximum');
      for (let i = 0; i < request.length; i++) c.write(request.subarray(i, i + 1));
      // 255 bytes, but not a name the destination check lets through (longer than 253 characters).
      await refusedWith(t, c, Buffer.concat([USER_PASS, AUTH_OK, reply(2)]), 'client');
      t.equal(arena.socks.requests.length, 0, 'Tor was never asked');
      refusedReason(t, arena, 'socks-bad-destination');
      await serveHonestSocks(t, arena);
    },
  },
  {
    group: 'resource',
    name: '10 MB of garbage instead of a greeting: refused at the first bytes, cut, nothing kept',
    async run(t, arena) {
      const c = await arena.socksClient();
      const garbage = Buffer.concat([Buffer.from('GET / HTTP/1.1\r\nHost: example.test\r\n\r\n'), randomBytes(10 * 1024 * 1024)]);
      const started = Date.now();
      c.write(garbage);
      await expectClosed(t, c, 'client');
      sameBytes(t, c.received, Buffer.alloc(0), 'client: nothing back (it is not SOCKS5)');
      t.ok(Date.now() - started < 5000, `cut (${Date.now() - started} ms)`);
      t.equal(arena.socks.requests.length, 0, 'Tor was never asked');
      refusedReason(t, arena, 'socks-handshake');
      await serveHonestSocks(t, arena);
    },
  },
  {
    group: 'resource',
    name: '10 MB of garbage pipelined after a valid CONNECT to a retired domain: refused, Tor never asked',
    arena: { entries: [{ domain: DOMAIN, host: `xmpp.${DOMAIN}` }, { domain: HONEST_DOMAIN, host: `xmpp.${HONEST_DOMAIN}` },
      { domain: RETIRED, onion: RETIRED_ONION, status: 'retired', note: 'retired.test retired its XMPP service' }] },
    async run(t, arena) {
      const c = await arena.socksClient();
      c.write(Buffer.concat([greeting(0), connectName(RETIRED, 5222), randomBytes(10 * 1024 * 1024)]));
      await refusedWith(t, c, Buffer.concat([NO_AUTH, reply(2)]), 'client');
      t.equal(arena.socks.requests.length, 0, 'Tor was never asked');
      refusedReason(t, arena, 'route-retired');
      await serveHonestSocks(t, arena);
    },
  },
  (() => {
    const raw = withRawTor({ connectTimeoutMs: 60_000 });
    return {
      group: 'resource',
      name: 'direct TLS (5223): 10 MB sent while Tor is still connecting: cut at the pre-TLS budget, Tor let go at once',
      arena: raw.arena,
      async run(t, arena) {
        const c = await arena.socksClient();
        c.write(Buffer.concat([greeting(0), connectName(DOMAIN, 5223)]));
        await raw.tor().firstData();
        const started = Date.now();
        for (let i = 0; i < 160 && !c.socket.destroyed; i++) c.write(randomBytes(64 * 1024));
        await expectClosed(t, c, 'client');
        sameBytes(t, c.received, NO_AUTH, 'client: method selection only, never a success');
        const drained = await raw.tor().drained(5000).then(() => true, () => false);
        t.ok(drained, `the daemon closed its Tor connection (${Date.now() - started} ms), not after the 60 s connect budget`);
        t.ok(raw.tor().received.every((b) => b.length < 600), 'Tor got the SOCKS handshake only, never the flood');
        // Regression: the cut was logged as the client closing, with no refusal (src/proxy/socks-door.ts).
        refusedReason(t, arena, 'client-limit');
        t.match(arena.daemon.logs().filter((l) => l.msg === 'closed'), [{ reason: 'client-limit' }], 'closed as client-limit');
      },
    } satisfies Scenario;
  })(),
  {
    group: 'resource',
    name: 'slowloris: 255-byte credentials and a CONNECT one byte at a time, cut at the handshake budget',
    arena: { daemon: { headerTimeoutMs: 700 } },
    async run(t, arena) {
      const c = await arena.socksClient();
      const secret = (s: string): Buffer => Buffer.from(s.padEnd(255, 'x'));
      const request = Buffer.concat([greeting(2), userPass(secret(arena.secrets.local), secret(arena.secrets.password)), connectName(DOMAIN, 5222)]);
      const started = Date.now();
      let i = 0;
      const timer = setInterval(() => {
        if (i < request.length) c.write(request.subarray(i, ++i));
      }, 20);
      try {
        await c.waitForClose(30_000);
      } finally {
        clearInterval(timer);
      }
      const elapsed = Date.now() - started;
      t.ok(i < request.length, `the drip was cut before it finished (${i} of ${request.length} bytes)`);
      // Cut while still sending credentials: the method choice only; cut in the request: then a general failure.
      const inAuth = USER_PASS;
      const inRequest = Buffer.concat([USER_PASS, Buffer.from([1, 0]), reply(1)]);
      t.ok(c.received.equals(inAuth) || c.received.equals(inRequest), 'client: the method choice, and a general failure only if it had reached its request');
      t.ok(elapsed >= 650 && elapsed < 3000, `cut at the budget (${elapsed} ms), not extended by the drip`);
      t.equal(arena.socks.requests.length, 0, 'Tor was never asked');
      refusedReason(t, arena, 'socks-timeout');
    },
  },
  {
    group: 'client',
    name: 'credentials of 255 bytes each (binary, with NUL and 0xff): never logged, never given to Tor, one circuit per credential',
    async run(t, arena) {
      const pad = (s: string, fill: number): Buffer => Buffer.concat([Buffer.from(s), Buffer.from([0, 0xff]), Buffer.alloc(253 - s.length, fill)]);
      const username = pad(arena.secrets.local, 0x75);
      const password = pad(arena.secrets.password, 0x70);
      t.equal(username.length + password.length, 510, 'both at the RFC 1929 maximum');
      await serveHonestSocks(t, arena, 'with credentials', { credentials: [username, password] });
      await serveHonestSocks(t, arena, 'again with the same credentials', { credentials: [username, password], pipelined: true });
      await serveHonestSocks(t, arena, 'with another password', { credentials: [username, pad(arena.secrets.password, 0x71)] });
      const [first, same, other] = arena.socks.requests;
      t.match(first, { host: `xmpp.${HONEST_DOMAIN}`, port: 5222, username: 'xmpp-onion-proxy' }, 'Tor was asked with our own user name');
      t.equal(first?.password, same?.password, 'the same credentials: the same isolation key');
      t.not(first?.password, other?.password, 'other credentials: another isolation key');
      const seen = arena.socks.requests.flatMap((r) => [r.username ?? '', r.password ?? '']).join('\n');
      t.notOk([arena.secrets.local, arena.secrets.password, 'uuuuuuuu', 'pppppppp'].some((s) => seen.includes(s)), 'nothing of the credentials reached Tor');
      const raw = arena.daemon.rawLogs();
      t.notOk(['uuuuuuuu', 'pppppppp', 'qqqqqqqq', username.toString('latin1'), password.toString('latin1')].some((s) => raw.includes(s)),
        'nothing of the credentials in the log, at any level');
    },
  },
  {
    group: 'client',
    name: "a stream whose 'to' is not the CONNECT destination: host-unknown, nothing reaches either server",
    async run(t, arena) {
      const c = await arena.socksClient();
      c.write(Buffer.concat([greeting(0), connectName(DOMAIN, 5222)]));
      const socksEnd = await c.waitFor(OPENED);
      c.write(clientHeaderIn(HONEST_DOMAIN, `${arena.secrets.local}@${HONEST_DOMAIN}`));
      await expectClosed(t, c, 'client');
      sameBytes(t, c.received.subarray(0, socksEnd), OPENED, 'client: the SOCKS success');
      sameText(t, c.text(socksEnd), ourError('host-unknown',
        `your client asked the proxy for ${DOMAIN} but its stream is for ${HONEST_DOMAIN}; refusing a server that does not match`, { id: c.id, from: HONEST_DOMAIN }),
      'client: host-unknown, in words');
      t.equal(arena.upstream.peers.length, 0, 'the CONNECT destination was never reached');
      t.equal(arena.honest.peers.length, 0, "the stream's 'to' was never reached");
      t.equal(arena.socks.requests.length, 0, "Tor was never asked: the stream's 'to' is checked first");
      refusedReason(t, arena, 'socks-to-mismatch');
      await serveHonestSocks(t, arena);
    },
  },
  {
    group: 'client',
    name: "a retired domain's onion named by the client itself: reply 0x02, Tor never asked (a retired onion is never dialled)",
    arena: { entries: [{ domain: DOMAIN, host: `xmpp.${DOMAIN}` }, { domain: HONEST_DOMAIN, host: `xmpp.${HONEST_DOMAIN}` },
      { domain: RETIRED, onion: RETIRED_ONION, status: 'retired', note: 'retired.test retired its XMPP service' }] },
    async run(t, arena) {
      const c = await arena.socksClient();
      c.write(Buffer.concat([greeting(0), connectName(RETIRED_ONION, 5222), Buffer.from(clientHeaderIn(RETIRED, `${arena.secrets.local}@${RETIRED}`))]));
      await refusedWith(t, c, Buffer.concat([NO_AUTH, reply(2)]), 'client');
      t.equal(arena.socks.requests.length, 0, 'Tor was never asked for the retired onion');
      refusedReason(t, arena, 'route-retired');
    },
  },
  (() => {
    const direct: Scenario = {
      group: 'client',
      name: 'direct TLS (5223) given a plaintext stream header: cut at the first byte, nothing forwarded',
      async run(t, arena) {
        for (const pipelined of [true, false]) {
          const before = arena.upstream.peers.length;
          const c = await arena.socksClient();
          const header = Buffer.from(clientHeaderIn(DOMAIN, arena.secrets.jid) + `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${arena.secrets.sasl}</auth>`);
          c.write(Buffer.concat([greeting(0), connectName(DOMAIN, 5223), ...(pipelined ? [header] : [])]));
          if (!pipelined) {
            await c.waitFor(OPENED);
            c.write(header);
          }
          const label = pipelined ? 'pipelined' : 'after the success';
          await refusedWith(t, c, OPENED, `${label}: client`);
          const server = await arena.upstream.peer(before);
          await expectClosed(t, server, `${label}: server`);
          sameText(t, server.text(), '', `${label}: the server got nothing`);
        }
        t.match(arena.socks.requests, [{ host: `xmpp.${DOMAIN}`, port: 5223 }, { host: `xmpp.${DOMAIN}`, port: 5223 }], 'Tor was asked for the direct-TLS port');
        t.equal(arena.daemon.logs().filter((l) => l.msg === 'cut: not TLS' && l.reason === 'tls-framing-client').length, 2, 'both cut as not TLS');
        await serveHonestSocks(t, arena);
      },
    };
    return direct;
  })(),
  realClientHello(5223, 'direct-tls', 'direct TLS (5223)'),
  {
    group: 'client',
    name: 'HTTPS (443, an upload or host-meta) given plain HTTP with a password: cut at the first byte, nothing forwarded',
    async run(t, arena) {
      const c = await arena.socksClient();
      c.write(Buffer.concat([greeting(0), connectName(`upload.${DOMAIN}`, 443), Buffer.from(`PUT /upload HTTP/1.1\r\nAuthorization: Basic ${arena.secrets.sasl}\r\n\r\n`)]));
      await refusedWith(t, c, OPENED, 'client');
      const server = await arena.upstream.peer(0);
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), '', 'the server got nothing');
      t.match(arena.socks.requests, [{ host: `upload.${DOMAIN}`, port: 443, atyp: 'domain' }], 'Tor was asked for the name as given, at 443');
      t.match(arena.daemon.logs().filter((l) => l.msg === 'cut: not TLS'), [{ reason: 'tls-framing-client' }], 'cut as not TLS');
      await serveHonestSocks(t, arena);
    },
  },
  realClientHello(443, 'https', 'HTTPS (443)'),
  {
    group: 'server',
    name: 'direct TLS (5223) and a server that answers in plaintext: cut, the client gets nothing after the SOCKS success',
    arena: {
      server: async (peer) => {
        peer.write(`<?xml version='1.0'?><stream:stream from='${DOMAIN}' version='1.0'><stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`);
        await peer.closed;
      },
    },
    async run(t, arena) {
      const c = await arena.socksClient();
      c.write(Buffer.concat([greeting(0), connectName(DOMAIN, 5223)]));
      await refusedWith(t, c, OPENED, 'client');
      const server = await arena.upstream.peer(0);
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), '', 'the server got nothing');
      t.match(arena.daemon.logs().filter((l) => l.msg === 'cut: not TLS'), [{ reason: 'tls-framing-server' }], 'cut as not TLS, from the server');
      await serveHonestSocks(t, arena);
    },
  },
  {
    group: 'resource',
    // Regression: the direct-TLS relay had no budget for the client's first bytes (src/proxy/socks-door.ts).
    name: 'direct TLS (5223) and a client that never sends its ClientHello: the header budget frees the connection and its Tor stream',
    arena: { daemon: { headerTimeoutMs: 700 } },
    async run(t, arena) {
      const c = await arena.socksClient();
      c.write(Buffer.concat([greeting(0), connectName(DOMAIN, 5223)]));
      await c.waitFor(OPENED);
      const started = Date.now();
      await refusedWith(t, c, OPENED, 'client');
      const elapsed = Date.now() - started;
      t.ok(elapsed >= 650 && elapsed < 3000, `cut at the budget (${elapsed} ms after the SOCKS success)`);
      const server = await arena.upstream.peer(0);
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), '', 'the server got nothing');
      refusedReason(t, arena, 'header-timeout');
      await serveHonestSocks(t, arena);
    },
  },
  {
    group: 'resource',
    name: 'a SOCKS client that gets its success and then never sends its stream header: cut at the header budget, Tor never asked',
    arena: { daemon: { headerTimeoutMs: 700 } },
    async run(t, arena) {
      const c = await arena.socksClient();
      c.write(Buffer.concat([greeting(0), connectName(DOMAIN, 5222)]));
      const socksEnd = await c.waitFor(OPENED);
      await expectClosed(t, c, 'client');
      sameBytes(t, c.received.subarray(0, socksEnd), OPENED, 'client: the SOCKS success');
      sameText(t, c.text(socksEnd), ourError('connection-timeout', 'your client did not send its stream header within 1 second', { id: c.id }),
        'client: the header budget, in words');
      t.equal(arena.socks.requests.length, 0, 'Tor was never asked');
      t.equal(arena.upstream.peers.length, 0, 'no server was reached');
    },
  },
  {
    group: 'client',
    name: 'other ports without --socks-allow-other-ports (80, 5269, 5280, 0): reply 0x02, Tor never asked',
    async run(t, arena) {
      for (const port of [80, 5269, 5280, 0]) {
        const c = await arena.socksClient();
        c.write(Buffer.concat([greeting(0), connectName(DOMAIN, port), Buffer.from(`GET / HTTP/1.1\r\nAuthorization: ${arena.secrets.password}\r\n\r\n`)]));
        await refusedWith(t, c, Buffer.concat([NO_AUTH, reply(2)]), `port ${port}`);
      }
      t.equal(arena.socks.requests.length, 0, 'Tor was never asked');
      t.equal(arena.daemon.logs().filter((l) => l.msg === 'refused' && l.reason === 'socks-port-not-allowed').length, 4, 'each logged as socks-port-not-allowed');
      await serveHonestSocks(t, arena);
    },
  },
  {
    group: 'client',
    name: 'no acceptable method, SOCKS4, BIND, UDP ASSOCIATE, an unknown address type: each refused in SOCKS terms, Tor never asked',
    async run(t, arena) {
      const cases: ReadonlyArray<readonly [string, Buffer, Buffer]> = [
        ['GSSAPI only', greeting(1), NO_METHOD],
        ['SOCKS4 CONNECT', Buffer.concat([Buffer.from([4, 1, 0x14, 0x66, 127, 0, 0, 1]), Buffer.from(`${arena.secrets.local}\0`)]), Buffer.alloc(0)],
        ['BIND', Buffer.concat([greeting(0), Buffer.from([5, 2, 0, 3, DOMAIN.length]), Buffer.from(DOMAIN), Buffer.from([0x14, 0x66])]), Buffer.concat([NO_AUTH, reply(7)])],
        ['UDP ASSOCIATE', Buffer.concat([greeting(0), Buffer.from([5, 3, 0, 1, 0, 0, 0, 0, 0, 0])]), Buffer.concat([NO_AUTH, reply(7)])],
        ['address type 9', Buffer.concat([greeting(0), Buffer.from([5, 1, 0, 9, 1, 2, 3, 4, 0x14, 0x66])]), Buffer.concat([NO_AUTH, reply(8)])],
        ['a request that is not SOCKS5', Buffer.concat([greeting(0), Buffer.from([4, 1, 0, 3, 1, 0x61, 0x14, 0x66])]), Buffer.concat([NO_AUTH, reply(1)])],
      ];
      for (const [label, bytes, expected] of cases) {
        const c = await arena.socksClient();
        c.write(bytes);
        await refusedWith(t, c, expected, label);
      }
      t.equal(arena.socks.requests.length, 0, 'Tor was never asked');
      t.equal(arena.daemon.logs().filter((l) => l.msg === 'refused' && l.reason === 'socks-handshake').length, cases.length, 'each logged as socks-handshake');
      await serveHonestSocks(t, arena);
    },
  },
  refusedConnect('an IPv4 literal (ATYP 1, 127.0.0.1:5222): reply 0x02, Tor never asked',
    connectAddress(1, [127, 0, 0, 1], 5222), 2, 'socks-ip-destination'),
  refusedConnect('an IPv6 literal (ATYP 4, ::1 port 5222): reply 0x02, Tor never asked',
    connectAddress(4, [...Array<number>(15).fill(0), 1], 5222), 2, 'socks-ip-destination'),
  refusedConnect('an IPv4-mapped IPv6 literal (ATYP 4, ::ffff:93.184.216.34): reply 0x02, Tor never asked',
    connectAddress(4, [...Array<number>(10).fill(0), 0xff, 0xff, 93, 184, 216, 34], 5222), 2, 'socks-ip-destination'),
  refusedConnect("an IPv4 literal sent as a name (ATYP 3, '93.184.216.34'): reply 0x02, Tor never asked",
    connectName('93.184.216.34', 5222), 2, 'socks-ip-destination'),
  refusedConnect("an IPv6 literal sent as a name (ATYP 3, '2001:db8::1'): reply 0x02, Tor never asked",
    connectName('2001:db8::1', 5222), 2, 'socks-ip-destination'),
  refusedConnect("a numeric name with a trailing dot (ATYP 3, '127.0.0.1.'): reply 0x02, Tor never asked",
    connectName('127.0.0.1.', 5222), 2, 'socks-bad-destination'),
  refusedConnect('a retired domain as the destination: reply 0x02, Tor never asked',
    connectName(RETIRED, 5222), 2, 'route-retired',
    { entries: [{ domain: DOMAIN, host: `xmpp.${DOMAIN}` }, { domain: HONEST_DOMAIN, host: `xmpp.${HONEST_DOMAIN}` },
      { domain: RETIRED, onion: RETIRED_ONION, status: 'retired', note: 'retired.test retired its XMPP service' }] }),
  refusedConnect('a malformed onion as the destination: reply 0x04, Tor never asked',
    connectName(`${'a'.repeat(56)}.onion`, 5222), 4, 'socks-bad-onion'),
  ...TOR_REFUSALS.map(torRefuses),
  ...([[0xf0, 'no descriptor for this onion service', 'onion-not-found'], [0x01, 'general failure', 'socks-general-failure'],
    [0x05, 'refused the connection', 'socks-connection-refused']] as const).map(torRefusesXmppPort),
  (() => {
    const raw = withRawTor({ connectTimeoutMs: 60_000 });
    return {
      group: 'fault',
      name: 'the client leaves while Tor is still connecting (FIN, then RST): the Tor-side socket closes at once (the success came at once: an XMPP port)',
      arena: raw.arena,
      async run(t, arena) {
        for (const [k, leave] of (['end', 'reset'] as const).entries()) {
          const c = await arena.socksClient();
          c.write(Buffer.concat([greeting(0), connectName(DOMAIN, 5222), Buffer.from(clientHeaderIn(DOMAIN, arena.secrets.jid))]));
          await c.waitFor(OPENED);
          const tor = raw.tor();
          // This client's connection to Tor has sent its SOCKS greeting: the connect is under way.
          await until(() => (tor.received[k]?.length ?? 0) > 0, `Tor connection #${k} greeted`);
          const started = Date.now();
          if (leave === 'end') c.socket.end();
          else c.reset();
          const drained = await tor.drained(5000).then(() => true, () => false);
          t.ok(drained, `${leave}: the daemon closed its Tor connection (${Date.now() - started} ms), not after the 60 s connect budget`);
          await c.waitForClose();
          sameBytes(t, c.received, OPENED, `${leave}: the client got the SOCKS success only`);
          t.ok(tor.received.every((b) => !b.includes(Buffer.from('<stream'))), `${leave}: Tor got nothing of the stream`);
          await until(() => arena.daemon.proxy.connections === 0, 'no session left');
        }
      },
    } satisfies Scenario;
  })(),
  {
    group: 'resource',
    name: `${IDLE_FLOOD} SOCKS clients that send nothing: the limit (${IDLE_LIMIT}) and the handshake budget hold`,
    arena: { daemon: { maxConnections: IDLE_LIMIT, preTlsMemoryBytes: 2 ** 31, headerTimeoutMs: 2500, lingerMs: 500 } },
    async run(t, arena) {
      let maxSeen = 0;
      const idle: Client[] = [];
      for (let i = 0; i < IDLE_FLOOD; i += 200) {
        for (let j = 0; j < 200; j++) idle.push(await arena.socksClient());
        maxSeen = Math.max(maxSeen, arena.daemon.proxy.connections);
      }
      // The daemon has taken every connection in: each is a session or has had its refusal.
      const overLimit = Buffer.concat([NO_AUTH, reply(1)]);
      const taken = (): number => arena.daemon.proxy.connections + idle.filter((c) => c.received.length >= overLimit.length).length;
      await until(() => taken() >= IDLE_FLOOD, 'every idle client taken in');
      maxSeen = Math.max(maxSeen, arena.daemon.proxy.connections);
      t.ok(maxSeen <= IDLE_LIMIT, `never more than ${IDLE_LIMIT} sessions (at most ${maxSeen} seen)`);
      const atLimit = await arena.socksClient();
      atLimit.write(Buffer.concat([greeting(0), connectName(HONEST_DOMAIN, 5222)]));
      await refusedWith(t, atLimit, overLimit, 'a SOCKS client at the limit');
      await Promise.all(idle.map((c) => c.closed));
      const refusedAtDoor = idle.filter((c) => c.received.equals(overLimit)).length;
      const timedOut = idle.filter((c) => c.received.length === 0).length;
      t.equal(timedOut, IDLE_LIMIT, `${IDLE_LIMIT} were cut by the handshake budget, with nothing sent back (they never finished a greeting)`);
      t.equal(refusedAtDoor, IDLE_FLOOD - IDLE_LIMIT, `${IDLE_FLOOD - IDLE_LIMIT} were refused at the door`);
      t.equal(arena.socks.requests.length, 0, 'Tor was never asked');
      await serveHonestSocks(t, arena, 'after the flood, a SOCKS client');
      await arena.serveHonest(t, 'and a connect-server client');
    },
  },
];

/** Every name says which door it attacks (ADVERSARIAL_ONLY='SOCKS door' runs just these). */
export const socksScenarios: Scenario[] = scenarios.map((s) => ({ ...s, name: `SOCKS door: ${s.name}` }));
