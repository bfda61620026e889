// ejabberd (the other server people run) accepts the daemon's pipelined negotiation: its
// stream header and <starttls/> arrive before ejabberd has said anything, and real clients
// log in through both doors and deliver a message. The SOCKS server keeps bytes written
// before its reply, as Tor does with optimistic data; a recorder in front of ejabberd shows
// what the server received before it first spoke.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startDaemonProcess } from '../helpers/daemon-process.js';
import { startEjabberd } from '../helpers/ejabberd.js';
import { sendWithGoSendxmpp } from '../helpers/sendxmpp.js';
import { startSocksForwarder } from '../helpers/socks-forwarder.js';
import { startSocks5Fixture } from '../helpers/socks5-server.js';
import { runXmppClient, startXmppClient } from '../helpers/xmpp-client.js';

const alicePassword = randomBytes(12).toString('base64url');
const bobPassword = randomBytes(12).toString('base64url');
const ejabberd = await startEjabberd({ users: [['alice', alicePassword], ['bob', bobPassword]] });
t.teardown(() => ejabberd.stop());

/** Each connection's bytes from the client side that reached ejabberd before ejabberd's first byte. */
const beforeServerSpoke: string[] = [];
const sockets = new Set<net.Socket>();
const recorder = net.createServer((client) => {
  const server = net.connect(ejabberd.c2sPort, '127.0.0.1');
  for (const s of [client, server]) {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => (s === client ? server : client).destroy());
  }
  let early = '';
  const record = (chunk: Buffer): void => void (early += chunk.toString('latin1'));
  client.on('data', record);
  server.once('data', () => {
    client.off('data', record);
    beforeServerSpoke.push(early);
  });
  client.pipe(server);
  server.pipe(client);
});
await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.1', resolve));
t.teardown(() => {
  for (const s of sockets) s.destroy();
  recorder.close();
});
const recorderPort = (recorder.address() as net.AddressInfo).port;

const tor = await startSocks5Fixture({ resolve: (host) => (host === '127.0.0.1' ? recorderPort : undefined) });
t.teardown(() => tor.close());
const dir = await mkdtemp(path.join(os.tmpdir(), 'xop-e2e-ejabberd-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const mapFile = path.join(dir, 'map.json');
await writeFile(mapFile, JSON.stringify({ 'example.test': { host: '127.0.0.1', port: 5222 } }));
const daemon = await startDaemonProcess(['--socks', '127.0.0.1:0', '--tor', `127.0.0.1:${tor.port}`, '--map', mapFile, '--log-level', 'trace']);
t.teardown(() => daemon.stop());
const socksDoor = await startSocksForwarder(daemon.socksPort!, { host: 'example.test', port: 5222 });
t.teardown(() => socksDoor.close());

const opts = { caCertPath: ejabberd.caCertPath, timeoutMs: 30_000 };
const account = (service: string, username: string, password: string) => ({ service, domain: 'example.test', username, password });
const connectServer = `xmpp://127.0.0.1:${daemon.port}`;

for (const [door, service] of [['connect-server door', connectServer], ['SOCKS door', `xmpp://127.0.0.1:${socksDoor.port}`]] as const) {
  t.test(`@xmpp/client through the ${door}: ejabberd gets header and <starttls/> at once, login, message delivered`, async (t) => {
    const body = `ejabberd ${door} ${randomBytes(4).toString('hex')} 🧅`;
    const receiver = startXmppClient({ ...account(connectServer, 'bob', bobPassword), resource: `rx${randomBytes(3).toString('hex')}`, actions: [{ do: 'receive', count: 1, from: 'alice@example.test' }] }, opts);
    t.teardown(() => receiver.stop());
    await receiver.waitFor('online');
    const already = beforeServerSpoke.length;
    const sent = await runXmppClient({ ...account(service, 'alice', alicePassword), actions: [{ do: 'send', to: 'bob@example.test', body }] }, opts);
    t.equal(sent.code, 0, `alice exits 0 ${sent.code === 0 ? '' : JSON.stringify(sent.events) + sent.stderr + ejabberd.logTail(30)}`);
    t.equal((await receiver.waitFor('message')).body, body, 'delivered byte for byte');
    const early = beforeServerSpoke.slice(already);
    t.equal(early.length, 1, 'one connection to ejabberd for the login');
    t.match(early[0], /^<\?xml version='1\.0'\?><stream:stream [^>]*to='example\.test'[^>]*><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'\/>$/, 'header and <starttls/> before ejabberd spoke');
  });
}

t.test('go-sendxmpp (a second real client) delivers through the connect-server door', async (t) => {
  const body = `go ${randomBytes(4).toString('hex')}`;
  const receiver = startXmppClient({ ...account(connectServer, 'bob', bobPassword), resource: 'rx-go', actions: [{ do: 'receive', count: 1 }] }, opts);
  t.teardown(() => receiver.stop());
  await receiver.waitFor('online');
  await sendWithGoSendxmpp({ jidUser: 'alice', domain: 'example.test', password: alicePassword, hostPort: `127.0.0.1:${daemon.port}`, to: 'bob@example.test', body, caCertPath: ejabberd.caCertPath });
  t.equal((await receiver.waitFor('message')).body, body);
});

t.test('every connection to ejabberd was pipelined, and the log holds no password or JID', async (t) => {
  t.ok(beforeServerSpoke.length >= 5, `${beforeServerSpoke.length} connections recorded`);
  for (const early of beforeServerSpoke) t.match(early, /<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'\/>$/);
  const log = daemon.rawLogs();
  for (const secret of [alicePassword, bobPassword, Buffer.from(`\0alice\0${alicePassword}`).toString('base64'), 'alice', 'bob@']) {
    t.notOk(log.includes(secret), `no "${secret.slice(0, 6)}…" in the log`);
  }
});
