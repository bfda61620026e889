// A real client logs in to a real Prosody (STARTTLS required) through the daemon's
// connect-server door, the daemon reaching Prosody through a real SOCKS5 server.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startDaemonProcess } from '../helpers/daemon-process.js';
import { startMicrosocks } from '../helpers/microsocks.js';
import { startProsody } from '../helpers/prosody.js';
import { sendWithGoSendxmpp } from '../helpers/sendxmpp.js';
import { runXmppClient, startXmppClient } from '../helpers/xmpp-client.js';

const alicePassword = randomBytes(12).toString('base64url');
const bobPassword = randomBytes(12).toString('base64url');
const prosody = await startProsody({ users: [['alice', alicePassword], ['bob', bobPassword]] });
t.teardown(() => prosody.stop());
const socks = await startMicrosocks();
t.teardown(() => socks.stop());
const dir = await mkdtemp(path.join(os.tmpdir(), 'xop-e2e-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const mapFile = path.join(dir, 'map.json');
await writeFile(mapFile, JSON.stringify({ 'example.test': { host: '127.0.0.1', port: prosody.c2sPort } }));
// microsocks drops bytes sent before its reply (Tor keeps them as optimistic data): the
// pipelined path is tested through real Tor (test/e2e/tor-onion-login.ts).
const daemon = await startDaemonProcess(['--no-pipelining', '--tor', `127.0.0.1:${socks.port}`, '--map', mapFile, '--log-level', 'trace']);
t.teardown(() => daemon.stop());

const service = `xmpp://127.0.0.1:${daemon.port}`;
const opts = { caCertPath: prosody.caCertPath, timeoutMs: 30_000 };
const alice = { service, domain: 'example.test', username: 'alice', password: alicePassword };
const bob = { service, domain: 'example.test', username: 'bob', password: bobPassword };

t.test('@xmpp/client logs in through the daemon and a message reaches a second account', async (t) => {
  const body = `through the proxy ${randomBytes(4).toString('hex')} 🧅`;
  const receiver = startXmppClient({ ...bob, resource: 'rx', actions: [{ do: 'receive', count: 1, from: 'alice@example.test' }] }, opts);
  t.teardown(() => receiver.stop());
  await receiver.waitFor('online');
  const sent = await runXmppClient({ ...alice, actions: [{ do: 'send', to: 'bob@example.test', body }] }, opts);
  t.equal(sent.code, 0, `alice exits 0 ${sent.code === 0 ? '' : JSON.stringify(sent.events) + sent.stderr + prosody.logTail(30)}`);
  const message = await receiver.waitFor('message');
  t.equal(message.body, body, 'delivered byte for byte');
  t.match(message.from, /^alice@example\.test\//);
});

t.test('alice joins a MUC room through the daemon', async (t) => {
  const joined = await runXmppClient({ ...alice, actions: [{ do: 'join', room: 'tails@conference.example.test/alice' }] }, opts);
  t.equal(joined.code, 0, JSON.stringify(joined.events));
  t.ok(joined.events.some((e) => e.event === 'joined'));
});

t.test('go-sendxmpp (a second real client) delivers through the daemon', async (t) => {
  const body = `go ${randomBytes(4).toString('hex')}`;
  const receiver = startXmppClient({ ...bob, resource: 'rx2', actions: [{ do: 'receive', count: 1 }] }, opts);
  t.teardown(() => receiver.stop());
  await receiver.waitFor('online');
  await sendWithGoSendxmpp({ jidUser: 'alice', domain: 'example.test', password: alicePassword, hostPort: `127.0.0.1:${daemon.port}`, to: 'bob@example.test', body, caCertPath: prosody.caCertPath });
  t.equal((await receiver.waitFor('message')).body, body);
});

t.test('the log, even at trace level, holds no password, SASL data, body or JID', async (t) => {
  await daemon.waitForLog((l) => l.msg === 'closed' && l.phase === 'Relaying');
  const log = daemon.rawLogs();
  t.ok(daemon.logs().filter((l) => l.msg === 'TLS started').length >= 4, 'every login went through TLS');
  for (const secret of [alicePassword, bobPassword, Buffer.from(`\0alice\0${alicePassword}`).toString('base64'), 'alice', 'bob@', 'through the proxy']) {
    t.notOk(log.includes(secret), `no "${secret.slice(0, 6)}…" in the log`);
  }
});
