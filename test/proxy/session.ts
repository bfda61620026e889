import t, { type Test } from 'tap';
import { createTestCa, issueServerCert } from '../helpers/certs.js';
import { startTestDaemon, type EntrySpec } from '../helpers/daemon.js';
import { FEATURES_STARTTLS, honestScript, PROCEED, startFakeXmppServer, type Script } from '../helpers/fake-xmpp.js';
import { FEATURES_PLAIN_ONLY, SERVER_HEADER, tlsHandshakeRecord } from '../helpers/policy-driver.js';
import { startSocks5Fixture } from '../helpers/socks5-server.js';
import { clientHeader, connect, readToClose, readUntil, STARTTLS, starttlsClient } from '../helpers/xmpp-wire.js';
import { freePort } from '../helpers/ports.js';

/** What the server gets from the daemon before any answer: the canonical header and `<starttls/>`, pipelined. */
const UPSTREAM_OPENING = clientHeader('example.test') + STARTTLS;
const ONION = '6voaf7iamjpufgwoulypzwwecsm2nu7j5jpgadav2rfqixmpl4d65kid.onion';
const ca = await createTestCa();
const leaf = await issueServerCert(ca, ['example.test']);

async function setup(t: Test, script: Script, entries: readonly EntrySpec[] = [{ domain: 'example.test', host: 'xmpp.example.test' }]) {
  const server = await startFakeXmppServer(script);
  t.teardown(() => server.close());
  const socks = await startSocks5Fixture({ resolve: (host) => (host === 'xmpp.example.test' || host === ONION ? server.port : undefined) });
  t.teardown(() => socks.close());
  const daemon = await startTestDaemon(t, socks.port, entries);
  return { server, socks, daemon };
}


t.test('STARTTLS through the daemon, then TLS end to end, verified against the real domain', async (t) => {
  const { server, socks, daemon } = await setup(t, honestScript(leaf.keyPem, leaf.certPem));
  const { secure, beforeTls } = await starttlsClient(daemon.port, 'example.test', ca.certPem);
  t.match(beforeTls, FEATURES_STARTTLS, 'the client sees STARTTLS required');
  secure.write('hello over TLS');
  t.equal(await readUntil(secure, (r) => r.length >= 14), 'hello over TLS', 'echoed inside TLS');
  t.equal(secure.getPeerCertificate().subject.CN, 'example.test');
  secure.end();
  const connection = await server.nextClosed();
  t.equal(connection.decrypted.toString(), 'hello over TLS');
  t.equal(
    connection.plaintext.toString(),
    clientHeader('example.test') + STARTTLS,
    'the server got only our re-serialised header (no from) and <starttls/> in clear',
  );
  t.equal(socks.requests.length, 1);
  t.match(socks.requests[0], { host: 'xmpp.example.test', port: 5222, atyp: 'domain', username: 'xmpp-onion-proxy' }, 'a host name for Tor to resolve, with an isolation key');
  const logs = daemon.logs();
  t.ok(logs.some((l) => l.msg === 'TLS started'), 'TLS start logged');
  const closed = await waitForLog(daemon, 'closed');
  t.match(closed, { reason: 'done', phase: 'Relaying' });
  t.ok((closed.fromClient as number) > 14 && (closed.fromServer as number) > 14, 'bytes counted both ways');
  t.notMatch(daemon.rawLogs(), /alice/, 'no JID in the log');
});

t.test('a mapped onion is what the daemon asks Tor for', async (t) => {
  const { socks, daemon } = await setup(t, honestScript(leaf.keyPem, leaf.certPem), [{ domain: 'example.test', onion: ONION }]);
  const { secure } = await starttlsClient(daemon.port, 'example.test', ca.certPem);
  secure.destroy();
  t.match(socks.requests[0], { host: ONION, port: 5222, atyp: 'domain' });
  t.ok(daemon.logs().some((l) => l.msg === 'routing' && l.route === 'onion'));
});

t.test('a ClientHello pipelined after <starttls/> is held until <proceed/>, then sent first', async (t) => {
  const hello = tlsHandshakeRecord(300);
  const chunks: Array<{ afterProceed: boolean; data: Buffer }> = [];
  const { daemon } = await setup(t, (s) => {
    let proceedSent = false;
    s.on('data', (data: Buffer) => {
      chunks.push({ afterProceed: proceedSent, data });
      if (data.includes('<stream:stream')) s.write(SERVER_HEADER + FEATURES_STARTTLS);
      if (data.includes('<starttls')) {
        proceedSent = true;
        s.write(PROCEED);
      }
      if (Buffer.concat(chunks.map((c) => c.data)).includes(hello)) s.end();
    });
  });
  const socket = await connect(daemon.port);
  const received = readToClose(socket);
  socket.write(clientHeader('example.test'));
  await readUntil(socket, (r) => r.includes('</stream:features>'));
  socket.write(Buffer.concat([Buffer.from(STARTTLS), hello]));
  await received;
  const before = Buffer.concat(chunks.filter((c) => !c.afterProceed).map((c) => c.data));
  const after = Buffer.concat(chunks.filter((c) => c.afterProceed).map((c) => c.data));
  t.equal(before.toString(), clientHeader('example.test') + STARTTLS, 'before <proceed/> the server saw the negotiation only');
  t.same(after, hello, 'the held ClientHello went out after <proceed/>, untouched');
});

for (const [name, clientSends, code, notForwarded] of [
  ['plaintext <auth>', "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>", 'client-plaintext-auth', 'AGFsaWNl'],
  ['in-band registration', "<iq type='set'><query xmlns='jabber:iq:register'><password>pw</password></query></iq>", 'client-plaintext-register', 'register'],
  ['a message stanza', "<message to='bob@example.test'><body>secret</body></message>", 'client-stanza-before-tls', 'secret'],
  ['command injection after <starttls/>', STARTTLS + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>AGFsaWNl</auth>", 'client-data-after-starttls', 'AGFsaWNl'],
] as const) {
  t.test(`client: ${name} is refused, with words, and never reaches the server`, async (t) => {
    const { server, daemon } = await setup(t, honestScript(leaf.keyPem, leaf.certPem));
    const socket = await connect(daemon.port);
    const received = readToClose(socket);
    socket.write(clientHeader('example.test'));
    await readUntil(socket, (r) => r.includes('</stream:features>'));
    socket.write(clientSends);
    const answer = (await received).toString();
    t.match(answer, /<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>[^<]*nothing was sent to the server[^<]*<\/text><\/stream:error><\/stream:stream>$/);
    const connection = await server.nextClosed();
    t.notOk(connection.plaintext.includes(notForwarded), 'the offending bytes never reached the server');
    t.equal(connection.plaintext.toString(), UPSTREAM_OPENING, 'the server got our opening only (header and <starttls/>, pipelined)');
    t.match(await waitForLog(daemon, 'refused'), { reason: code, level: 40 });
  });
}

/** A scripted server: each answer is written once its cue has arrived (however the daemon's bytes are chunked). */
function answers(...script: Array<readonly [cue: string, answer: string]>): Script {
  return (socket) => {
    let seen = '';
    let next = 0;
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      while (next < script.length && seen.includes(script[next]![0])) socket.write(script[next++]![1]);
    });
  };
}

const hostile: Array<[string, string, Script]> = [
  ['strips STARTTLS from its features', 'server-no-starttls', answers(['<stream:stream', SERVER_HEADER + FEATURES_PLAIN_ONLY])],
  ['answers <starttls/> with <failure/>', 'server-starttls-failure',
    answers(['<stream:stream', SERVER_HEADER + FEATURES_STARTTLS], ['<starttls', "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"])],
  ['injects plaintext right after <proceed/>', 'server-data-after-proceed',
    answers(['<stream:stream', SERVER_HEADER + FEATURES_STARTTLS], ['<starttls', PROCEED + FEATURES_PLAIN_ONLY])],
  // Plaintext once the client's ClientHello came: the relay cuts it.
  ['sends plaintext after <proceed/> in a later write', 'tls-framing-server',
    answers(['<stream:stream', SERVER_HEADER + FEATURES_STARTTLS], ['<starttls', PROCEED], ['\u0016\u0003', FEATURES_PLAIN_ONLY])],
];

for (const [name, code, script] of hostile) {
  t.test(`server ${name}: refused, nothing of it reaches the client`, async (t) => {
    const { daemon } = await setup(t, script);
    const socket = await connect(daemon.port);
    const received = readToClose(socket);
    socket.write(clientHeader('example.test'));
    const features = await readUntil(socket, (r) => r.includes('</stream:features>') || r.includes('</stream:stream>')).catch((e: { received: string }) => e.received);
    if (features.includes('<starttls')) {
      socket.write(STARTTLS);
      if (code === 'tls-framing-server') {
        await readUntil(socket, (r) => r.includes('<proceed'));
        socket.write(tlsHandshakeRecord(100));
      }
    }
    const all = features + (await received).toString('latin1');
    t.notMatch(all, /mechanisms|PLAIN/, 'the client never saw the mechanisms a stripped server offered');
    if (code !== 'tls-framing-server') {
      t.match(all, /<stream:error><[a-z-]+ xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/><text [^>]*>[^<]+<\/text>/, 'a stream error with words');
      t.notMatch(all, /<proceed/, 'no <proceed/> reached the client when the proceed carried an injection');
    }
    t.match(await waitForLog(daemon, code === 'tls-framing-server' ? 'cut: not TLS' : 'refused'), { reason: code });
  });
}

t.test('a retired domain is refused with its note and Tor is never asked', async (t) => {
  const { socks, daemon } = await setup(t, honestScript(leaf.keyPem, leaf.certPem), [
    { domain: 'riseup.net', onion: ONION, status: 'retired', note: 'riseup.net retired its XMPP service in 2023' },
  ]);
  const socket = await connect(daemon.port);
  const received = readToClose(socket);
  socket.write(clientHeader('riseup.net'));
  const answer = (await received).toString();
  t.match(answer, /<host-gone xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/><text[^>]*>riseup.net retired its XMPP service in 2023<\/text>/);
  t.equal(socks.requests.length, 0);
});

t.test("Tor's refusals reach the client in words", async (t) => {
  const { socks, daemon } = await setup(t, honestScript(leaf.keyPem, leaf.certPem));
  for (const [code, words] of [[0xf0, /no descriptor for this onion service/], [0xf2, /introduction points/], [0x05, /refused the connection/], [0x01, /general failure/]] as const) {
    socks.setReply(code);
    const socket = await connect(daemon.port);
    const received = readToClose(socket);
    socket.write(clientHeader('example.test'));
    const answer = (await received).toString();
    t.match(answer, /<remote-connection-failed xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/, `0x${code.toString(16)}: condition`);
    t.match(answer, words, `0x${code.toString(16)}: words`);
    t.match(answer, `SOCKS reply 0x${code.toString(16).padStart(2, '0')}`);
  }
});

t.test('Tor not running: the client is told so', async (t) => {
  const closedPort = await freePort();
  const daemon = await startTestDaemon(t, closedPort, []);
  const socket = await connect(daemon.port);
  const received = readToClose(socket);
  socket.write(clientHeader('example.test'));
  t.match((await received).toString(), `Tor is not running at 127.0.0.1:${closedPort} (connection refused)`);
  t.match(await waitForLog(daemon, 'refused'), { reason: 'tor-unavailable' });
});

t.test('the client sends plaintext instead of a ClientHello after <proceed/>: cut, nothing forwarded', async (t) => {
  const { server, daemon } = await setup(t, honestScript(leaf.keyPem, leaf.certPem));
  const socket = await connect(daemon.port);
  const received = readToClose(socket);
  socket.write(clientHeader('example.test'));
  await readUntil(socket, (r) => r.includes('</stream:features>'));
  socket.write(STARTTLS);
  await readUntil(socket, (r) => r.includes('<proceed'));
  socket.write("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>AGFsaWNl</auth>");
  await received;
  const connection = await server.nextClosed();
  t.notOk(connection.plaintext.includes('AGFsaWNl'), 'never forwarded');
  t.match(await waitForLog(daemon, 'cut: not TLS'), { reason: 'tls-framing-client' });
});

t.test('the connection limit refuses with a clear error and keeps serving the others', async (t) => {
  const socks = await startSocks5Fixture({ resolve: () => undefined });
  t.teardown(() => socks.close());
  const limited = await startTestDaemon(t, socks.port, [], { maxConnections: 2 });
  const first = await connect(limited.port);
  const second = await connect(limited.port);
  await waitFor(() => limited.proxy.connections === 2);
  const third = await connect(limited.port);
  const answer = (await readToClose(third)).toString();
  t.match(answer, /<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/><text[^>]*>the proxy already has 2 connections open/);
  t.equal(limited.proxy.connections, 2, 'the first two are still open');
  first.destroy();
  second.destroy();
  await waitFor(() => limited.proxy.connections === 0);
});

t.test('a silent client is cut after the header timeout', async (t) => {
  const socks = await startSocks5Fixture({ resolve: () => undefined });
  t.teardown(() => socks.close());
  const daemon = await startTestDaemon(t, socks.port, [], { headerTimeoutMs: 200 });
  const socket = await connect(daemon.port);
  const answer = (await readToClose(socket)).toString();
  t.match(answer, /<connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/><text[^>]*>your client did not send its stream header within 0 seconds/);
});

async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

async function waitForLog(daemon: { logs(): Array<Record<string, unknown>> }, msg: string): Promise<Record<string, unknown>> {
  for (;;) {
    const line = daemon.logs().find((l) => l.msg === msg);
    if (line) return line;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
