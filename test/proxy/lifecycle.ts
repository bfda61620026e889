// One lifecycle for every connection: regressions for the defects found at its old seams.
import net from 'node:net';
import tls from 'node:tls';
import t from 'tap';
import { SocksClient } from 'socks';
import { createTestCa, issueServerCert } from '../helpers/certs.js';
import { startTestDaemon } from '../helpers/daemon.js';
import { FEATURES_STARTTLS, PROCEED, startFakeXmppServer } from '../helpers/fake-xmpp.js';
import { FEATURES_PLAIN_ONLY, SERVER_HEADER } from '../helpers/policy-driver.js';
import { startSocks5Fixture } from '../helpers/socks5-server.js';
import { clientHeader, readUntil, STARTTLS } from '../helpers/xmpp-wire.js';
import { refusal } from '../../src/policy/refusals.js';
import { streamErrorXml } from '../../src/policy/serialize.js';

const ca = await createTestCa();
const leaf = await issueServerCert(ca, ['example.test']);

t.test('a refusal keeps its stream error when the server closes at once and the client is still writing', async (t) => {
  // The server strips STARTTLS and hangs up in the same breath.
  const server = await startFakeXmppServer((socket) => {
    socket.once('data', () => {
      socket.end(SERVER_HEADER + FEATURES_PLAIN_ONLY);
    });
  });
  t.teardown(() => server.close());
  const socks = await startSocks5Fixture({ resolve: () => server.port });
  t.teardown(() => socks.close());
  const daemon = await startTestDaemon(t, socks.port, [{ domain: 'example.test', host: 'xmpp.example.test' }], { lingerMs: 5_000 });
  for (let round = 0; round < 20; round++) {
    // Half-open like a real client that has not read its error yet: our FIN alone does not end its writing.
    const client = net.connect({ port: daemon.port, host: '127.0.0.1', allowHalfOpen: true });
    await new Promise<void>((resolve) => client.once('connect', resolve));
    let received = '';
    let problem: string | undefined;
    let writing = true;
    client.on('data', (chunk: Buffer) => (received += chunk.toString()));
    client.on('error', (error: NodeJS.ErrnoException) => (problem = error.code ?? error.message));
    // Whitespace and empty elements inside an open <starttls> are read (up to the pre-TLS
    // bounds): the client keeps the daemon's receive buffer full.
    const keepWriting = (): void => {
      if (!writing || client.destroyed) return;
      if (client.write(' '.repeat(508) + '<r/>')) setImmediate(keepWriting);
      else client.once('drain', keepWriting);
    };
    client.write(clientHeader('example.test') + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>");
    keepWriting();
    await new Promise<void>((resolve) => client.once('end', resolve).once('close', resolve));
    // A client that has not read its error yet goes on writing a little, then closes its side.
    for (let i = 0; i < 20 && !client.destroyed; i++) {
      client.write(' '.repeat(512));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    writing = false;
    client.end();
    await new Promise<void>((resolve) => (client.closed ? resolve() : client.once('close', resolve)));
    const expected = SERVER_HEADER.replace(/"/g, "'");
    t.ok(received.startsWith(expected.slice(0, 20)), `round ${round}: the server's header reached the client`);
    t.ok(received.endsWith(streamErrorXml(refusal('server-no-starttls', { domain: 'example.test' }), { withHeader: false, id: 'x' })),
      `round ${round}: the whole stream error arrived, then the close`);
    t.equal(problem, undefined, `round ${round}: no reset or broken pipe before the error was read`);
  }
});

t.test('at the SOCKS door, a server that speaks the moment it is reached (with Tor\'s reply, before our opening) is kept, not dropped', async (t) => {
  // The SOCKS client to Tor hands the socket over paused with those bytes put back.
  const server = await startFakeXmppServer((socket, connection) => {
    socket.write(SERVER_HEADER + FEATURES_STARTTLS);
    let seen = '';
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString();
      if (!seen.includes('<starttls')) return;
      socket.removeListener('data', onData);
      socket.write(PROCEED);
      const secure = new tls.TLSSocket(socket, { isServer: true, key: leaf.keyPem, cert: leaf.certPem });
      connection.tlsSocket = secure;
      secure.on('data', (data: Buffer) => secure.write(data));
      secure.on('error', () => socket.destroy());
    };
    socket.on('data', onData);
  });
  t.teardown(() => server.close());
  const socks = await startSocks5Fixture({ resolve: () => server.port });
  t.teardown(() => socks.close());
  const daemon = await startTestDaemon(t, socks.port, [{ domain: 'example.test', host: 'xmpp.example.test' }], { negotiationTimeoutMs: 5_000 });
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port: daemon.socksPort, type: 5 },
    command: 'connect',
    destination: { host: 'example.test', port: 5222 },
    timeout: 10_000,
  });
  socket.write(clientHeader('example.test'));
  const features = await readUntil(socket, (r) => r.includes('</stream:features>') || r.includes('</stream:stream>'));
  t.match(features, '<starttls', 'the features the server sent early reached the client');
  socket.write(STARTTLS);
  await readUntil(socket, (r) => r.includes('<proceed'));
  const secure = tls.connect({ socket, servername: 'example.test', ca: ca.certPem });
  await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
  secure.write('ping');
  t.equal(await readUntil(secure, (r) => r.length >= 4), 'ping', 'TLS end to end');
  secure.destroy();
});

t.test('pass-through connections count their bytes', async (t) => {
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => echo.close(() => resolve())));
  const socks = await startSocks5Fixture({ resolve: () => (echo.address() as net.AddressInfo).port });
  t.teardown(() => socks.close());
  const daemon = await startTestDaemon(t, socks.port, [], { socksAllowOtherPorts: true });
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port: daemon.socksPort, type: 5 },
    command: 'connect',
    destination: { host: 'files.example.test', port: 7777 },
    timeout: 10_000,
  });
  socket.write('0123456789');
  t.equal(await readUntil(socket, (r) => r.length >= 10), '0123456789');
  socket.end();
  const closed = await new Promise<Record<string, unknown>>((resolve) => {
    const poll = (): void => {
      const line = daemon.logs().find((l) => l.msg === 'closed');
      if (line) resolve(line);
      else setTimeout(poll, 5);
    };
    poll();
  });
  t.match(closed, { mode: 'passthrough', fromClient: 10, fromServer: 10 }, 'ten bytes each way');
});

t.test('per-domain isolation keys on the normalised name', async (t) => {
  const socks = await startSocks5Fixture({ resolve: () => undefined, reply: 0x04 });
  t.teardown(() => socks.close());
  const daemon = await startTestDaemon(t, socks.port, [], { isolation: 'per-domain' });
  // Direct TLS: the SOCKS reply waits for Tor, so each connect has asked Tor when it returns.
  for (const host of ['Example.org.', 'example.org']) {
    await SocksClient.createConnection({
      proxy: { host: '127.0.0.1', port: daemon.socksPort, type: 5 },
      command: 'connect',
      destination: { host, port: 5223 },
      timeout: 10_000,
    }).catch(() => undefined);
  }
  t.equal(socks.requests.length, 2);
  t.equal(socks.requests[0]!.password, socks.requests[1]!.password, 'one circuit for one domain, however it is written');
});
