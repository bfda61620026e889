/**
 * Exact bytes where TLS starts (issue 13, items 3 and 4): whitespace between the last XML element
 * and the first TLS byte is dropped however TCP chunks it (bounded); the first record each way
 * must carry that side's hello (a ClientHello, a ServerHello), so a record header followed by
 * plaintext (`16 03 01 00 6c <auth>…`) is refused before, at and after `<proceed/>`, and at the
 * direct-TLS port.
 */
import { randomBytes } from 'node:crypto';
import {
  clientHeaderIn, DOMAIN, FEATURES_OUT, FEATURES_REQUIRED_IN, ourError, PROCEED_IN, PROCEED_OUT, serverHeaderIn, serverHeaderOut,
  STARTTLS_IN, STARTTLS_OUT, upstreamHeader, upstreamOpening, type Arena, type ServerScript,
} from './adversary-arena.js';
import { readTls, type Peer } from './adversary-peers.js';
import { expectClosed, isTlsRecords, sameText, type Scenario } from './adversary-scenario.js';
import { connectName, greeting, OPENED, refusedWith, serveHonestSocks } from './adversary-scenarios-socks.js';

const UPSTREAM = upstreamHeader(DOMAIN);
/** Our header and `<starttls/>`: what the server gets before it answers (pipelined). */
const OPENING = upstreamOpening(DOMAIN);
const NOTHING = 'nothing was sent to the server';

/** A handshake record header and plaintext inside it: what a walker of headers alone lets through. */
function plaintextInRecord(plaintext: string, recordMinor = 1): Buffer {
  const body = Buffer.from(plaintext);
  const header = Buffer.from([22, 3, recordMinor, 0, 0]);
  header.writeUInt16BE(body.length, 3);
  return Buffer.concat([header, body]);
}

/** A promise and its resolver: the scenario opens the gate, the server script waits at it. */
function gate(): { open: () => void; opened: Promise<void> } {
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

/** Header, features, `<proceed/>`; then `afterProceed` (given the offset where TLS starts). */
function proceedsThen(afterProceed: (peer: Peer, tlsFrom: number, pki: { key: string; cert: string }) => Promise<void>): ServerScript {
  return async (peer, pki) => {
    await peer.waitFor('>', await peer.waitFor('<stream:stream'));
    peer.write(serverHeaderIn(DOMAIN) + FEATURES_REQUIRED_IN);
    const at = await peer.waitFor(STARTTLS_OUT);
    peer.write(PROCEED_IN);
    await afterProceed(peer, at, pki);
  };
}

async function atProceed(arena: Arena): Promise<Peer & { id: string; proceedEnd: number }> {
  const c = await arena.client();
  c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
  await c.waitFor(FEATURES_OUT);
  c.write(STARTTLS_IN);
  return Object.assign(c, { proceedEnd: await c.waitFor(PROCEED_OUT) });
}

/** A TLS round trip through the daemon, verified against the test CA, and TLS records only on the server's side after the negotiation. */
async function servedOverTls(t: Parameters<Scenario['run']>[0], arena: Arena, c: Peer & { proceedEnd: number }, from = c.proceedEnd): Promise<void> {
  const secure = await c.tlsClient(from, DOMAIN, arena.pki.ca);
  const ping = randomBytes(8).toString('hex');
  secure.write(ping);
  t.equal((await readTls(secure, ping.length)).toString(), ping, 'served: a round trip inside TLS');
  const server = arena.upstream.peers[0]!;
  sameText(t, server.text(0, (UPSTREAM + STARTTLS_OUT).length), UPSTREAM + STARTTLS_OUT, 'server: the negotiation only, in clear');
  t.ok(isTlsRecords(server.after((UPSTREAM + STARTTLS_OUT).length)), 'server: then TLS records only, no whitespace');
  secure.destroy();
  await expectClosed(t, c, 'client');
}

function serverWhitespaceInItsOwnWrite(): Scenario {
  const relayed = gate();
  return {
    group: 'tls-start',
    name: 'a server writes <proceed/>, then whitespace in a write of its own once the relay runs: dropped, the login goes on',
    arena: {
      server: proceedsThen(async (peer, at, pki) => {
        await relayed.opened;
        peer.write('\r\n  \n');
        peer.tlsServer(at, pki.key, pki.cert);
      }),
    },
    async run(t, arena) {
      const c = await atProceed(arena);
      relayed.open();
      const server = await arena.upstream.peer(0);
      await server.waitForSent((serverHeaderIn(DOMAIN) + FEATURES_REQUIRED_IN + PROCEED_IN).length);
      await servedOverTls(t, arena, c);
      sameText(t, c.text(0, c.proceedEnd), serverHeaderOut(DOMAIN) + FEATURES_OUT + PROCEED_OUT, 'client: the negotiation, and no whitespace before TLS');
    },
  };
}

function serverWhitespaceOverTheBound(): Scenario {
  const relayed = gate();
  return {
    group: 'tls-start',
    name: 'a server sends 2 KiB of whitespace after <proceed/> (more than the 1 KiB bound): cut, the client gets nothing more',
    arena: {
      server: proceedsThen(async (peer) => {
        await relayed.opened;
        peer.write(' '.repeat(2048));
        await peer.closed;
      }),
    },
    async run(t, arena) {
      const c = await atProceed(arena);
      relayed.open();
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), serverHeaderOut(DOMAIN) + FEATURES_OUT + PROCEED_OUT, 'client: nothing after <proceed/>');
      t.match(arena.daemon.logs().find((l) => l.msg === 'cut: not TLS'), { reason: 'tls-framing-server', problem: 'more than 1024 bytes of whitespace before TLS' }, 'cut, in words');
    },
  };
}

export const tlsStartScenarios: Scenario[] = [
  serverWhitespaceInItsOwnWrite(),
  serverWhitespaceOverTheBound(),
  {
    group: 'tls-start',
    name: 'a client writes whitespace on its own after <proceed/>, then its ClientHello: dropped, the login goes on',
    async run(t, arena) {
      const c = await atProceed(arena);
      c.write('\n');
      await c.waitForSent(c.sent.length - 1);
      await servedOverTls(t, arena, c);
    },
  },
  {
    group: 'tls-start',
    name: 'a record header with plaintext <auth> inside, right behind <starttls/>: refused as not a ClientHello, nothing forwarded',
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await c.waitFor(FEATURES_OUT);
      c.write(Buffer.concat([Buffer.from(STARTTLS_IN), plaintextInRecord(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${arena.secrets.sasl}</auth>`)]));
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), serverHeaderOut(DOMAIN) + FEATURES_OUT + ourError('policy-violation',
        `your client sent a TLS record after <starttls/> that is not a ClientHello (the first TLS message is not a ClientHello (it looks like plaintext)); ${NOTHING}`),
      'client: refused, in words');
      const server = arena.upstream.peers[0]!;
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), OPENING, 'server: our opening only, not the record');
    },
  },
  {
    group: 'tls-start',
    name: 'a record header with plaintext <auth> inside, after <proceed/>: cut, the server gets nothing after <starttls/>',
    async run(t, arena) {
      const c = await atProceed(arena);
      c.write(plaintextInRecord(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${arena.secrets.sasl}</auth>`, 3));
      await expectClosed(t, c, 'client');
      const server = arena.upstream.peers[0]!;
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), OPENING, 'server: the negotiation only');
      t.match(arena.daemon.logs().find((l) => l.msg === 'cut: not TLS'), { reason: 'tls-no-client-hello' }, 'cut: not a ClientHello');
    },
  },
  {
    group: 'tls-start',
    name: 'a ClientHello header whose length does not fit its record, and one with no TLS version: refused before anything is forwarded',
    async run(t, arena) {
      const cases: Array<[Buffer, string]> = [
        [Buffer.from([22, 3, 1, 0, 60, 1, 0, 1, 0, 3, 3, ...Buffer.alloc(54, 0x41)]), 'the ClientHello claims 256 bytes, which cannot be a ClientHello in a record of 60 bytes'],
        [Buffer.from([22, 3, 1, 0, 60, 1, 0, 0, 56, 0x50, 0x4c, ...Buffer.alloc(54, 0x41)]), 'the ClientHello has no TLS version (it looks like plaintext)'],
      ];
      for (const [bytes, problem] of cases) {
        const c = await arena.client();
        c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
        await c.waitFor(FEATURES_OUT);
        c.write(Buffer.concat([Buffer.from(STARTTLS_IN), bytes]));
        await expectClosed(t, c, 'client');
        t.ok(c.text().includes(`after &lt;starttls/&gt; that is not a ClientHello (${problem})`), problem);
      }
      for (const server of arena.upstream.peers) {
        await expectClosed(t, server, 'server');
        sameText(t, server.text(), OPENING, 'server: our opening only');
      }
    },
  },
  {
    group: 'tls-start',
    name: 'a server answers the ClientHello with a handshake record holding plaintext features that offer PLAIN: cut, the client gets nothing after <proceed/>',
    arena: {
      server: proceedsThen(async (peer) => {
        await peer.waitFor(Buffer.from([22, 3]), (UPSTREAM + STARTTLS_OUT).length);
        peer.write(plaintextInRecord("<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>", 3));
        await peer.closed;
      }),
    },
    async run(t, arena) {
      const c = await atProceed(arena);
      const secure = c.tlsClientNow(c.proceedEnd, DOMAIN, arena.pki.ca);
      await secure.connected.catch(() => undefined);
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), serverHeaderOut(DOMAIN) + FEATURES_OUT + PROCEED_OUT, 'client: nothing after <proceed/>');
      t.match(arena.daemon.logs().find((l) => l.msg === 'cut: not TLS'), { reason: 'tls-no-server-hello' }, 'cut: not a ServerHello');
    },
  },
  {
    group: 'tls-start',
    name: 'SOCKS door, direct TLS (5223): a record header with plaintext <auth> inside is cut, the server gets nothing',
    async run(t, arena) {
      const c = await arena.socksClient();
      c.write(Buffer.concat([greeting(0), connectName(DOMAIN, 5223)]));
      await c.waitFor(OPENED);
      c.write(plaintextInRecord(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${arena.secrets.sasl}</auth>`));
      await refusedWith(t, c, OPENED, 'client');
      const server = await arena.upstream.peer(0);
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), '', 'server: nothing');
      t.match(arena.daemon.logs().find((l) => l.msg === 'cut: not TLS'), { reason: 'tls-no-client-hello' }, 'cut: not a ClientHello');
      await serveHonestSocks(t, arena);
    },
  },
];
