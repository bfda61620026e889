// Through real Tor: a private Tor network on 127.0.0.1 (test/helpers/tor-shared.ts), Prosody
// behind a real v3 onion service, the daemon binary at both doors, real clients.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startDaemonProcess, type DaemonProcess } from '../helpers/daemon-process.js';
import { freePort } from '../helpers/ports.js';
import { startProsody, type Prosody } from '../helpers/prosody.js';
import { sendWithGoSendxmpp } from '../helpers/sendxmpp.js';
import { startSocksForwarder } from '../helpers/socks-forwarder.js';
import { randomOnionAddress, TorControl } from '../helpers/tor-network.js';
import { claimTarget, useTorNetwork } from '../helpers/tor-shared.js';
import { startFakeXmppServer } from '../helpers/fake-xmpp.js';
import { FEATURES_PLAIN_ONLY, SERVER_HEADER } from '../helpers/policy-driver.js';
import { clientHeader, connect, readToClose, readUntil, STARTTLS } from '../helpers/xmpp-wire.js';
import { runXmppClient, startXmppClient } from '../helpers/xmpp-client.js';

const alicePassword = randomBytes(12).toString('base64url');
const bobPassword = randomBytes(12).toString('base64url');
const tor = await useTorNetwork(t);
t.comment(`private Tor network up in ${tor.startupMs} ms (shared: ${tor.shared})`);

let prosody: Prosody;
let daemon: DaemonProcess;
let mapFile: string;
const unknownOnion = randomOnionAddress();
/** What the stripping server behind an onion received before it said anything, per connection. */
const firstBytes: string[] = [];

t.before(async () => {
  const c2s = await claimTarget(t, tor, 'prosody');
  const directTls = await claimTarget(t, tor, 'prosodyTls');
  prosody = await startProsody({ users: [['alice', alicePassword], ['bob', bobPassword]], directTls: true, ports: { c2s, directTls } });
  t.teardown(() => prosody.stop());
  const dir = await mkdtemp(path.join(os.tmpdir(), 'xop-tor-e2e-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  mapFile = path.join(dir, 'map.json');
  await writeFile(mapFile, JSON.stringify({
    'example.test': { onion: tor.onions.prosody, port: 5222, directTlsPort: 5223 },
    'unknown.test': { onion: unknownOnion },
    'down.test': { onion: tor.onions.down },
    'stripped.test': { onion: tor.onions.fake1 },
  }));
  // An attacker's server behind an onion: it strips STARTTLS and offers PLAIN, once it has
  // what a client sends first (recorded: with pipelining, our header and <starttls/>).
  const fake = await startFakeXmppServer((socket) => {
    let seen = '';
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString('latin1');
      if (!seen.includes('<stream:stream') || !/<starttls[^>]*\/>/.test(seen)) return;
      socket.removeListener('data', onData);
      firstBytes.push(seen);
      socket.write(SERVER_HEADER + FEATURES_PLAIN_ONLY);
    };
    socket.on('data', onData);
  }, await claimTarget(t, tor, 'fake1'));
  t.teardown(() => fake.close());
  daemon = await startDaemonProcess(['--log-level', 'debug', '--socks', '127.0.0.1:0', '--tor', `127.0.0.1:${tor.socksPort}`, '--map', mapFile, '--connect-timeout', '60']);
  t.teardown(() => daemon.stop());
});

const opts = () => ({ caCertPath: prosody.caCertPath, timeoutMs: 90_000 });

t.test('connect-server door: a real client logs in to Prosody behind a v3 onion; a message is delivered and a MUC room joined', async (t) => {
  const service = `xmpp://127.0.0.1:${daemon.port}`;
  const bob = { service, domain: 'example.test', username: 'bob', password: bobPassword };
  const alice = { service, domain: 'example.test', username: 'alice', password: alicePassword };
  const body = `over an onion ${randomBytes(4).toString('hex')}`;
  const started = Date.now();
  const receiver = startXmppClient({ ...bob, resource: 'rx', actions: [{ do: 'receive', count: 1, from: 'alice@example.test' }] }, opts());
  t.teardown(() => receiver.stop());
  await receiver.waitFor('online', 90_000);
  t.comment(`first onion login took ${Date.now() - started} ms`);
  const sent = await runXmppClient({ ...alice, actions: [{ do: 'send', to: 'bob@example.test', body }, { do: 'join', room: 'tails@conference.example.test/alice' }] }, opts());
  t.equal(sent.code, 0, JSON.stringify(sent.events));
  t.ok(sent.events.some((e) => e.event === 'joined'), 'joined the room');
  t.equal((await receiver.waitFor('message')).body, body);
  const routed = daemon.logs().filter((l) => l.msg === 'routing');
  t.ok(routed.length >= 2 && routed.every((l) => l.route === 'onion'), 'every connection went to the onion');
});

t.test('SOCKS door: STARTTLS and direct TLS to the onion, certificate checked against example.test', async (t) => {
  const starttls = await startSocksForwarder(daemon.socksPort!, { host: 'example.test', port: 5222 });
  t.teardown(() => starttls.close());
  const direct = await startSocksForwarder(daemon.socksPort!, { host: 'example.test', port: 5223 });
  t.teardown(() => direct.close());
  const bob = { service: `xmpp://127.0.0.1:${starttls.port}`, domain: 'example.test', username: 'bob', password: bobPassword };
  const receiver = startXmppClient({ ...bob, resource: 'rx2', actions: [{ do: 'receive', count: 1 }] }, opts());
  t.teardown(() => receiver.stop());
  await receiver.waitFor('online', 90_000);
  const body = `direct TLS over an onion ${randomBytes(4).toString('hex')}`;
  await sendWithGoSendxmpp({ jidUser: 'alice', domain: 'example.test', password: alicePassword, hostPort: `127.0.0.1:${direct.port}`, to: 'bob@example.test', body, caCertPath: prosody.caCertPath, directTls: true, timeoutMs: 90_000 });
  t.equal((await receiver.waitFor('message', 90_000)).body, body);
});

async function refusalText(port: number, domain: string): Promise<string> {
  const socket = await connect(port);
  const answer = readToClose(socket);
  socket.write(clientHeader(domain));
  return (await answer).toString();
}

t.test("Tor's errors reach the client in words", async (t) => {
  const unknown = await refusalText(daemon.port, 'unknown.test');
  t.match(unknown, /<remote-connection-failed xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
  t.match(unknown, /Tor found no descriptor for this onion service[^<]*\(SOCKS reply 0xf0\)/, 'descriptor not found');
  const down = await refusalText(daemon.port, 'down.test');
  t.match(down, /could not reach the onion service: Tor could not connect to the onion service \(general failure: the service may be down, or not serving this port\)/);
  const flipped = unknownOnion[10] === 'a' ? 'b' : 'a';
  const malformed = await refusalText(daemon.port, `${unknownOnion.slice(0, 10)}${flipped}${unknownOnion.slice(11)}`);
  t.match(malformed, /<host-unknown [^>]*\/><text[^>]*>the server address &quot;[a-z2-7]+\.onion&quot; has a wrong checksum/, 'a malformed onion is refused before Tor is asked');
});

t.test('a server behind an onion that strips STARTTLS is refused as before; before it spoke it had our header and <starttls/> (pipelined, sent with Tor\'s BEGIN)', async (t) => {
  const answer = await refusalText(daemon.port, 'stripped.test');
  t.match(answer, /<policy-violation [^>]*\/><text[^>]*>server stripped.test did not offer STARTTLS; refusing to continue without encryption/);
  t.notMatch(answer, /mechanisms|PLAIN/, 'the offered PLAIN never reached the client');
  t.equal(firstBytes.at(-1), clientHeader('stripped.test') + STARTTLS, 'the first bytes through the onion: the canonical header, then <starttls/>, nothing else');
});

t.test('without ExtendedErrors (like Tails\' 9050) the standard codes are mapped', async (t) => {
  const plain = await startDaemonProcess(['--log-level', 'debug', '--tor', `127.0.0.1:${tor.plainSocksPort}`, '--map', mapFile, '--connect-timeout', '60']);
  t.teardown(() => plain.stop());
  t.match(await refusalText(plain.port, 'unknown.test'), /Tor could not reach the host \(SOCKS reply 0x04\)/);
});

t.test('--tor pointing at a closed port: "Tor is not running at …"', async (t) => {
  const closed = await freePort();
  const noTor = await startDaemonProcess(['--log-level', 'debug', '--tor', `127.0.0.1:${closed}`]);
  t.teardown(() => noTor.stop());
  await noTor.waitForLog((l) => l.level === 40 && String(l.msg).includes('does not answer'));
  t.match(await refusalText(noTor.port, 'example.test'), `Tor is not running at 127.0.0.1:${closed} (connection refused)`);
});

/** The circuits Tor attached the streams to our onion to, read from the control port. */
async function onionCircuits(ctl: TorControl, onion: string): Promise<string[]> {
  const reply = await ctl.command('GETINFO stream-status');
  return reply.lines
    .map((line) => line.replace(/^stream-status=/, '').trim().split(' '))
    .filter((fields) => fields.length >= 4 && fields[3]?.startsWith(onion) && fields[1] === 'SUCCEEDED')
    .map((fields) => fields[2]!);
}

t.test('circuit isolation: per-connection gives each connection its own circuit; none shares one', async (t) => {
  const ctl = await TorControl.connect(tor.controlPort, tor.controlPassword);
  t.teardown(() => ctl.close());
  for (const [isolation, distinct] of [['per-connection', 2], ['none', 1]] as const) {
    const d = await startDaemonProcess(['--log-level', 'debug', '--tor', `127.0.0.1:${tor.socksPort}`, '--map', mapFile, '--isolation', isolation, '--connect-timeout', '60']);
    const held: net.Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const socket = await connect(d.port);
      socket.write(clientHeader('example.test'));
      await readUntil(socket, (r) => r.includes('</stream:features>'));
      held.push(socket);
    }
    const circuits = await onionCircuits(ctl, tor.onions.prosody);
    t.equal(circuits.length, 2, `${isolation}: two open streams to the onion`);
    t.equal(new Set(circuits).size, distinct, `${isolation}: ${distinct} circuit(s)`);
    for (const socket of held) socket.destroy();
    await d.stop();
    await waitFor(async () => (await onionCircuits(ctl, tor.onions.prosody)).length === 0);
  }
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
