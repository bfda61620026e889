// The SOCKS door end to end: clients whose proxy setting points at the door (a forwarder stands
// in for the client's own SOCKS support) log in to a real Prosody with the certificate checked
// against the real domain, over STARTTLS on 5222 and direct TLS on 5223.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startDaemonProcess } from '../helpers/daemon-process.js';
import { startMicrosocks } from '../helpers/microsocks.js';
import { startProsody } from '../helpers/prosody.js';
import { sendWithGoSendxmpp } from '../helpers/sendxmpp.js';
import { startSocksForwarder } from '../helpers/socks-forwarder.js';
import { runXmppClient, startXmppClient } from '../helpers/xmpp-client.js';

const alicePassword = randomBytes(12).toString('base64url');
const bobPassword = randomBytes(12).toString('base64url');
const prosody = await startProsody({ users: [['alice', alicePassword], ['bob', bobPassword]], directTls: true });
t.teardown(() => prosody.stop());
const tor = await startMicrosocks();
t.teardown(() => tor.stop());
const dir = await mkdtemp(path.join(os.tmpdir(), 'xop-e2e-socks-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const mapFile = path.join(dir, 'map.json');
await writeFile(mapFile, JSON.stringify({ 'example.test': { host: '127.0.0.1', port: prosody.c2sPort, directTlsPort: prosody.directTlsPort } }));
// microsocks drops bytes sent before its reply (Tor keeps them as optimistic data): the
// pipelined path is tested through real Tor (test/e2e/tor-onion-login.ts).
const daemon = await startDaemonProcess(['--no-pipelining', '--socks', '127.0.0.1:0', '--tor', `127.0.0.1:${tor.port}`, '--map', mapFile, '--log-level', 'debug']);
t.teardown(() => daemon.stop());
const socksPort = daemon.socksPort!;
const starttls = await startSocksForwarder(socksPort, { host: 'example.test', port: 5222 });
t.teardown(() => starttls.close());
const directTls = await startSocksForwarder(socksPort, { host: 'example.test', port: 5223 });
t.teardown(() => directTls.close());

const opts = { caCertPath: prosody.caCertPath, timeoutMs: 30_000 };
const account = (username: string, password: string) => ({ service: `xmpp://127.0.0.1:${starttls.port}`, domain: 'example.test', username, password });

t.test('@xmpp/client through the SOCKS door: login, certificate checked against example.test, message delivered', async (t) => {
  const body = `socks door ${randomBytes(4).toString('hex')}`;
  const receiver = startXmppClient({ ...account('bob', bobPassword), resource: 'rx', actions: [{ do: 'receive', count: 1, from: 'alice@example.test' }] }, opts);
  t.teardown(() => receiver.stop());
  await receiver.waitFor('online');
  const sent = await runXmppClient({ ...account('alice', alicePassword), actions: [{ do: 'send', to: 'bob@example.test', body }] }, opts);
  t.equal(sent.code, 0, JSON.stringify(sent.events));
  t.equal((await receiver.waitFor('message')).body, body);
});

t.test('go-sendxmpp over direct TLS (XEP-0368) on 5223 through the SOCKS door', async (t) => {
  const body = `direct ${randomBytes(4).toString('hex')}`;
  const receiver = startXmppClient({ ...account('bob', bobPassword), resource: 'rx2', actions: [{ do: 'receive', count: 1 }] }, opts);
  t.teardown(() => receiver.stop());
  await receiver.waitFor('online');
  await sendWithGoSendxmpp({ jidUser: 'alice', domain: 'example.test', password: alicePassword, hostPort: `127.0.0.1:${directTls.port}`, to: 'bob@example.test', body, caCertPath: prosody.caCertPath, directTls: true });
  t.equal((await receiver.waitFor('message')).body, body);
  t.ok(daemon.logs().some((l) => l.msg === 'routing' && l.mode === 'direct-tls'), 'routed as direct TLS');
});

t.test('a client whose certificate check is against the wrong name fails: the door does not hide the server', async (t) => {
  const wrong = await runXmppClient({ ...account('alice', alicePassword), domain: 'localhost', actions: [] }, { ...opts, timeoutMs: 15_000 });
  t.not(wrong.code, 0, 'no login when the stream is for another domain');
});
