import net from 'node:net';
import tls from 'node:tls';
import t, { type Test } from 'tap';
import { SocksClient } from 'socks';
import { createTestCa, issueServerCert } from '../helpers/certs.js';
import { startTestDaemon, type EntrySpec } from '../helpers/daemon.js';
import { honestScript, startFakeXmppServer } from '../helpers/fake-xmpp.js';
import { startSocks5Fixture } from '../helpers/socks5-server.js';
import { clientHeader, readToClose, readUntil, STARTTLS } from '../helpers/xmpp-wire.js';

const ONION = '6voaf7iamjpufgwoulypzwwecsm2nu7j5jpgadav2rfqixmpl4d65kid.onion';
const ca = await createTestCa();
const leaf = await issueServerCert(ca, ['example.test']);

/** A server doing XEP-0368 direct TLS: TLS from the first byte, then echo. */
async function startDirectTlsServer(t: Test): Promise<number> {
  const server = tls.createServer({ key: leaf.keyPem, cert: leaf.certPem }, (s) => s.pipe(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

async function setup(t: Test, entries: readonly EntrySpec[] = [{ domain: 'example.test', onion: ONION, directTlsPort: 5223 }]) {
  const xmpp = await startFakeXmppServer(honestScript(leaf.keyPem, leaf.certPem));
  t.teardown(() => xmpp.close());
  const direct = await startDirectTlsServer(t);
  const tor = await startSocks5Fixture({
    resolve: (host, port) => (host === ONION || host === 'example.test' ? (port === 5223 ? direct : xmpp.port) : undefined),
  });
  t.teardown(() => tor.close());
  const daemon = await startTestDaemon(t, tor.port, entries);
  return { xmpp, tor, daemon };
}

async function socksConnect(port: number, host: string, destPort: number, credentials?: { userId: string; password: string }) {
  return SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port, type: 5, ...credentials },
    command: 'connect',
    destination: { host, port: destPort },
    timeout: 10_000,
  });
}

t.test('STARTTLS through the SOCKS door: the certificate is checked against the real domain', async (t) => {
  const { xmpp, tor, daemon } = await setup(t);
  const { socket } = await socksConnect(daemon.socksPort, 'example.test', 5222);
  socket.write(clientHeader('example.test'));
  const features = await readUntil(socket, (r) => r.includes('</stream:features>'));
  t.match(features, '<starttls');
  socket.write(STARTTLS);
  await readUntil(socket, (r) => r.includes('<proceed'));
  const secure = tls.connect({ socket, servername: 'example.test', ca: ca.certPem });
  await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
  t.ok(secure.authorized, 'verified against example.test, not 127.0.0.1');
  secure.write('ping');
  t.equal(await readUntil(secure, (r) => r.length >= 4), 'ping');
  secure.end();
  t.equal((await xmpp.nextClosed()).plaintext.toString(), clientHeader('example.test') + STARTTLS);
  t.match(tor.requests[0], { host: ONION, port: 5222, atyp: 'domain' }, 'Tor was asked for the mapped onion');
});

t.test('direct TLS: the SOCKS reply is sent only after Tor connected', async (t) => {
  const { tor, daemon } = await setup(t);
  tor.setReply(0xf0);
  const error = await socksConnect(daemon.socksPort, 'example.test', 5223).catch((e: Error) => e);
  t.match(String(error), /HostUnreachable/, 'descriptor not found maps to host unreachable');
  t.match(daemon.logs().find((l) => l.msg === 'refused'), { reason: 'onion-not-found' }, 'Tor\'s own reason in the log');
});

t.test('an XMPP port: success at once, and Tor\'s refusal as a stream error in its words once the header came', async (t) => {
  const { tor, daemon } = await setup(t);
  tor.setReply(0xf0);
  const { socket } = await socksConnect(daemon.socksPort, 'example.test', 5222);
  t.equal(tor.requests.length, 0, 'Tor not asked before the stream header');
  const received = readToClose(socket);
  socket.write(clientHeader('example.test'));
  const answer = (await received).toString();
  t.match(answer, /<remote-connection-failed xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/><text[^>]*>could not reach the onion service: Tor found no descriptor for this onion service/);
  t.match(tor.requests, [{ host: ONION, port: 5222 }], 'then Tor was asked, for the mapped onion');
});

t.test("direct TLS: every Tor refusal maps to the closest SOCKS reply", async (t) => {
  const { tor, daemon } = await setup(t);
  const expected: Array<[number, RegExp]> = [
    [0x01, /Failure/], [0x02, /NotAllowed/], [0x03, /NetworkUnreachable/], [0x04, /HostUnreachable/], [0x05, /ConnectionRefused/],
    [0x06, /TTLExpired/], [0x07, /Failure/], [0x08, /AddressNotSupported/], [0xf0, /HostUnreachable/], [0xf1, /Failure/],
    [0xf2, /HostUnreachable/], [0xf3, /HostUnreachable/], [0xf4, /NotAllowed/], [0xf5, /NotAllowed/], [0xf6, /HostUnreachable/], [0xf7, /HostUnreachable/],
  ];
  for (const [code, reply] of expected) {
    tor.setReply(code);
    const error = await socksConnect(daemon.socksPort, 'example.test', 5223).catch((e: Error) => e);
    t.match(String(error), reply, `Tor 0x${code.toString(16)}`);
  }
});

t.test('direct TLS on 5223: TLS from the first byte, framing checked', async (t) => {
  const { tor, daemon } = await setup(t);
  const { socket } = await socksConnect(daemon.socksPort, 'example.test', 5223);
  const secure = tls.connect({ socket, servername: 'example.test', ca: ca.certPem });
  await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
  secure.write('direct');
  t.equal(await readUntil(secure, (r) => r.length >= 6), 'direct');
  secure.end();
  t.match(tor.requests[0], { host: ONION, port: 5223 });
});

t.test('direct TLS: plaintext instead of a ClientHello is cut, nothing forwarded', async (t) => {
  const { daemon } = await setup(t);
  const { socket } = await socksConnect(daemon.socksPort, 'example.test', 5223);
  const closed = readToClose(socket);
  socket.write("<?xml version='1.0'?><stream:stream to='example.test'>");
  t.equal((await closed).length, 0, 'nothing came back');
  t.match(daemon.logs().find((l) => l.msg === 'cut: not TLS'), { reason: 'tls-framing-client' });
});

t.test('other ports are refused with 0x02 and a log line', async (t) => {
  const { tor, daemon } = await setup(t);
  const error = await socksConnect(daemon.socksPort, 'example.test', 80).catch((e: Error) => e);
  t.match(String(error), /NotAllowed/);
  t.equal(tor.requests.length, 0, 'Tor never asked');
  t.match(daemon.logs().find((l) => l.msg === 'refused'), { reason: 'socks-port-not-allowed' });
});

t.test('a stream whose to does not match the destination is refused with words', async (t) => {
  const { xmpp, tor, daemon } = await setup(t);
  const { socket } = await socksConnect(daemon.socksPort, 'example.test', 5222);
  const answer = readToClose(socket);
  socket.write(clientHeader('other.test'));
  t.match((await answer).toString(), /<host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/><text[^>]*>your client asked the proxy for example.test but its stream is for other.test/);
  t.equal(tor.requests.length, 0, 'Tor was never asked');
  t.equal(xmpp.connections.length, 0, 'nothing reached the server');
});

t.test('a retired destination is refused before Tor is asked', async (t) => {
  const { tor, daemon } = await setup(t, [{ domain: 'riseup.net', onion: ONION, status: 'retired', note: 'riseup.net retired its XMPP service in 2023' }]);
  const error = await socksConnect(daemon.socksPort, 'riseup.net', 5222).catch((e: Error) => e);
  t.match(String(error), /NotAllowed/);
  t.equal(tor.requests.length, 0);
  t.match(daemon.logs().find((l) => l.msg === 'refused'), { reason: 'route-retired' });
});

t.test("the client's SOCKS credentials choose the circuit; they are never passed on or logged", async (t) => {
  const { tor, daemon } = await setup(t);
  for (const password of ['first-secret', 'first-secret', 'second-secret']) {
    // Direct TLS: the SOCKS reply waits for Tor, so Tor has been asked when the connect returns.
    const { socket } = await socksConnect(daemon.socksPort, 'example.test', 5223, { userId: 'alice-circuit', password });
    socket.destroy();
  }
  const keys = tor.requests.map((r) => r.password);
  t.equal(keys[0], keys[1], 'same credentials, same isolation key');
  t.not(keys[0], keys[2], 'other credentials, another circuit');
  t.notOk(keys.some((k) => k?.includes('secret')), 'the client\'s password never reaches Tor');
  t.notMatch(daemon.rawLogs(), /secret|alice-circuit/, 'nor the log');
  for (const [userId, password] of [['a\0b', 'c'], ['a', 'b\0c']]) {
    const { socket } = await socksConnect(daemon.socksPort, 'example.test', 5223, { userId: userId!, password: password! });
    socket.destroy();
  }
  const [first, second] = tor.requests.slice(-2).map((r) => r.password);
  t.not(first, second, 'pairs that differ only in where a NUL falls get different circuits');
});

t.test('BIND and UDP ASSOCIATE are refused with 0x07', async (t) => {
  const { tor, daemon } = await setup(t);
  for (const command of [2, 3]) {
    const socket = net.connect({ host: '127.0.0.1', port: daemon.socksPort });
    const answer = readToClose(socket);
    socket.write(Buffer.from([5, 1, 0, 5, command, 0, 1, 127, 0, 0, 1, 0, 0]));
    t.same([...(await answer)], [5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0], `command ${command}`);
  }
  t.equal(tor.requests.length, 0);
});

t.test('a client that leaves while Tor is still connecting cancels the connect at once (direct TLS: the reply waits for Tor)', async (t) => {
  // A Tor that takes the SOCKS request and never answers it.
  let torSide: net.Socket | undefined;
  const torClosed = new Promise<void>((resolve) => {
    const silent = net.createServer((socket) => {
      torSide = socket;
      socket.once('data', () => socket.write(Buffer.from([5, 0])));
      socket.on('error', () => {});
      socket.on('close', () => resolve());
    });
    silent.listen(0, '127.0.0.1');
    t.teardown(() => new Promise<void>((r) => silent.close(() => r())));
    silent.once('listening', async () => {
      const daemon = await startTestDaemon(t, (silent.address() as net.AddressInfo).port, [], { connectTimeoutMs: 60_000 });
      const client = net.connect({ host: '127.0.0.1', port: daemon.socksPort });
      client.write(Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 3, 12]), Buffer.from('example.test'), Buffer.from([0x14, 0x67])]));
      client.once('data', () => {
        const waitForTor = (): void => {
          if (torSide) client.end();
          else setImmediate(waitForTor);
        };
        waitForTor();
      });
    });
  });
  await torClosed;
  t.pass('the connection to Tor closed when the client left, long before the 60 s connect budget');
});
