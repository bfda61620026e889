// Leak checks on the built daemon, run under `strace -f` while real clients log in through it
// (Prosody with STARTTLS required, Debian's microsocks standing in for Tor, @xmpp/client and
// go-sendxmpp, a MUC join) and while attackers try it (plaintext auth with a real password, a
// STARTTLS-stripping upstream, command injection, a JID as `to`), logging at trace:
// - every connect() the daemon made went to Tor's SOCKS port (127.0.0.1), nothing else;
// - no name was resolved: no UDP socket, nothing sent to port 53, no netlink socket (glibc's
//   getaddrinfo), no /etc/hosts, /etc/gai.conf or /etc/services read. Node's
//   net.Server.listen(host) sets up c-ares once at start-up, which reads /etc/resolv.conf and
//   /etc/nsswitch.conf once without any query; that single read is allowed, nothing more;
// - the log, at trace level, holds no password, SASL payload, stanza body or JID local part.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { clientHeaderIn, FEATURES_OUT, FEATURES_PLAIN_IN, serverHeaderIn, STARTTLS_IN } from '../helpers/adversary-arena.js';
import { connectPeer, startPeerServer } from '../helpers/adversary-peers.js';
import { checkTorOnly, networkReport, startTracedDaemon } from '../helpers/adversary-strace.js';
import { startMicrosocks } from '../helpers/microsocks.js';
import { startProsody } from '../helpers/prosody.js';
import { sendWithGoSendxmpp } from '../helpers/sendxmpp.js';
import { runXmppClient, startXmppClient } from '../helpers/xmpp-client.js';

const alicePassword = `pw${randomBytes(12).toString('base64url')}`;
const bobPassword = `pw${randomBytes(12).toString('base64url')}`;
const prosody = await startProsody({ users: [['alice', alicePassword], ['bob', bobPassword]] });
t.teardown(() => prosody.stop());
const socks = await startMicrosocks();
t.teardown(() => socks.stop());
const stripping = await startPeerServer(async (peer) => {
  await peer.waitFor('>', await peer.waitFor('<stream:stream'));
  peer.write(serverHeaderIn('hostile.test') + FEATURES_PLAIN_IN);
});
t.teardown(() => stripping.close());
const dir = await mkdtemp(path.join(os.tmpdir(), 'xop-strace-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const mapFile = path.join(dir, 'map.json');
await writeFile(mapFile, JSON.stringify({
  'example.test': { host: '127.0.0.1', port: prosody.c2sPort },
  'hostile.test': { host: '127.0.0.1', port: stripping.port },
}));
const traceFile = path.join(dir, 'strace.txt');
// microsocks drops bytes sent before its reply (Tor keeps them as optimistic data): the
// pipelined path is tested through real Tor (test/e2e/tor-onion-login.ts).
const daemon = await startTracedDaemon(traceFile, ['--no-pipelining', '--tor', `127.0.0.1:${socks.port}`, '--map', mapFile, '--log-level', 'trace']);
t.teardown(() => daemon.stop());

const service = `xmpp://127.0.0.1:${daemon.port}`;
const opts = { caCertPath: prosody.caCertPath, timeoutMs: 30_000 };
const alice = { service, domain: 'example.test', username: 'alice', password: alicePassword };
const bob = { service, domain: 'example.test', username: 'bob', password: bobPassword };
const bodies: string[] = [];

t.test('real clients log in and deliver through the traced daemon', async (t) => {
  const body = `traced ${randomBytes(6).toString('hex')}`;
  bodies.push(body);
  const receiver = startXmppClient({ ...bob, resource: 'rx', actions: [{ do: 'receive', count: 2, from: 'alice@example.test' }] }, opts);
  t.teardown(() => receiver.stop());
  await receiver.waitFor('online');
  const sent = await runXmppClient({ ...alice, actions: [{ do: 'send', to: 'bob@example.test', body }] }, opts);
  t.equal(sent.code, 0, '@xmpp/client: alice logged in and sent');
  t.equal((await receiver.waitFor('message')).body, body, 'delivered');
  const goBody = `go traced ${randomBytes(6).toString('hex')}`;
  bodies.push(goBody);
  await sendWithGoSendxmpp({ jidUser: 'alice', domain: 'example.test', password: alicePassword, hostPort: `127.0.0.1:${daemon.port}`, to: 'bob@example.test', body: goBody, caCertPath: prosody.caCertPath });
  t.equal((await receiver.waitFor('message')).body, goBody, 'go-sendxmpp delivered');
  const joined = await runXmppClient({ ...alice, actions: [{ do: 'join', room: 'traced@conference.example.test/alice' }] }, opts);
  t.equal(joined.code, 0, 'alice joined a MUC room');
});

t.test('attackers against the traced daemon are refused', async (t) => {
  const sasl = Buffer.from(`\0alice\0${alicePassword}`).toString('base64');
  const auth = await connectPeer(daemon.port);
  auth.write(clientHeaderIn('example.test', 'alice@example.test'));
  await auth.waitFor(FEATURES_OUT);
  auth.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${sasl}</auth>`);
  await auth.waitForClose();
  t.match(auth.text(), /your client tried to log in \(&lt;auth&gt;\) before encryption was set up/, 'plaintext auth refused');
  const injection = await connectPeer(daemon.port);
  injection.write(clientHeaderIn('example.test', 'alice@example.test'));
  await injection.waitFor(FEATURES_OUT);
  injection.write(`${STARTTLS_IN}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${sasl}</auth>`);
  await injection.waitForClose();
  t.match(injection.text(), /data after &lt;starttls\/&gt; that is not TLS/, 'command injection refused');
  const stripped = await connectPeer(daemon.port);
  stripped.write(clientHeaderIn('hostile.test', 'alice@hostile.test'));
  await stripped.waitForClose();
  t.match(stripped.text(), /did not offer STARTTLS/, 'a stripped STARTTLS refused');
  t.notMatch(stripped.text(), /mechanism/, 'the stripped features never reached the client');
  const jid = await connectPeer(daemon.port);
  jid.write(clientHeaderIn('alice@example.test'));
  await jid.waitForClose();
  t.match(jid.text(), /JID with a user part/, 'a JID as the server name refused');
});

t.test('strace: the daemon connected to Tor only, and resolved no name', async (t) => {
  await daemon.waitForLog((l) => l.msg === 'closed' && l.phase === 'Relaying');
  t.equal(await daemon.stop(), 0, 'the daemon stopped cleanly');
  checkTorOnly(t, networkReport(await readFile(traceFile, 'utf8')), socks.port, 8);
});

t.test('negative control: the same checks do see a name lookup', async (t) => {
  const controlTrace = path.join(dir, 'control.txt');
  await new Promise<void>((resolve, reject) => {
    execFile('strace', ['-f', '-qq', '-e', 'trace=%network,open,openat,openat2', '-o', controlTrace, process.execPath, '-e',
      "require('dns').lookup('localhost', () => require('net').connect(9, '127.0.0.1').on('error', () => {}))"], (error) => (error ? reject(error) : resolve()));
  });
  const report = networkReport(await readFile(controlTrace, 'utf8'));
  t.ok(report.resolverFiles.has('/etc/hosts'), 'getaddrinfo reading /etc/hosts is seen');
  t.ok(report.connects.includes('AF_INET 127.0.0.1:9'), 'connects are parsed');
  t.ok(report.connects.some((c) => c.startsWith('AF_UNIX')), "glibc's connect to nscd would fail the Tor-only check");
});

t.test('the log, at trace level, holds no password, SASL payload, body or JID local part', async (t) => {
  const log = daemon.rawLogs();
  t.ok(log.split('\n').length > 30, 'the daemon logged at trace level');
  t.ok(log.includes('"level":10') || log.includes('"level":20'), 'debug or trace lines are there');
  const secrets = [alicePassword, bobPassword, Buffer.from(`\0alice\0${alicePassword}`).toString('base64'), ...bodies, 'alice', 'bob@', 'traced@'];
  t.same(secrets.filter((s) => log.includes(s)).map((s) => s.slice(0, 6)), [], 'none of them');
});
