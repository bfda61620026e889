// Gajim's set-up, with the libraries Gajim connects and uploads with (Debian's python3-nbxmpp
// and libsoup 3; test/fixtures/gajim-client.py): a per-account SOCKS5 proxy at the SOCKS door,
// no custom host, STARTTLS. It logs in with the certificate checked against the domain, a
// message is delivered, and an HTTP upload (XEP-0363) to Prosody's http_file_share goes
// through the SOCKS door as HTTPS, checked as TLS from the first byte; over plain HTTP it is
// refused before anything leaves.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createTestPki } from '../helpers/certs.js';
import { checkTorOnly, networkReport, startTracedDaemon } from '../helpers/adversary-strace.js';
import { prosodyBehindTor } from '../helpers/prosody-behind-tor.js';
import { runPythonClient } from '../helpers/python-client.js';
import { startXmppClient } from '../helpers/xmpp-client.js';

const { prosody, tor, passwords, dir, mapFile } = await prosodyBehindTor(t, { httpUpload: true });
const { alice: alicePassword, bob: bobPassword } = passwords;
const upload = prosody.upload!;
const traceFile = path.join(dir, 'daemon.strace');
const daemon = await startTracedDaemon(traceFile, ['--socks', '127.0.0.1:0', '--tor', `127.0.0.1:${tor.port}`, '--map', mapFile, '--log-level', 'trace']);
t.teardown(() => daemon.stop());

const gajim = (extra: Record<string, unknown>, caCertPath = prosody.caCertPath) =>
  runPythonClient('gajim-client.py', { socksPort: daemon.socksPort, domain: 'example.test', username: 'alice', password: alicePassword, caCertPath, ...extra });

t.test('Gajim (nbxmpp) through the SOCKS door: STARTTLS, certificate checked against example.test, message delivered', async (t) => {
  const body = `gajim ${randomBytes(4).toString('hex')} 🧅`;
  const receiver = startXmppClient({ service: `xmpp://127.0.0.1:${daemon.port}`, domain: 'example.test', username: 'bob', password: bobPassword, resource: 'rx', actions: [{ do: 'receive', count: 1, from: 'alice@example.test' }] }, { caCertPath: prosody.caCertPath });
  t.teardown(() => receiver.stop());
  await receiver.waitFor('online');
  const before = tor.requests.length;
  const result = await gajim({ send: { to: 'bob@example.test', body } });
  t.equal(result.code, 0, `nbxmpp exits 0 ${result.code === 0 ? '' : JSON.stringify(result.events) + result.stderr.slice(-2000)}`);
  t.match(result.events, [{ event: 'connected', secure: true, jid: 'alice@example.test' }, { event: 'sent' }, { event: 'done' }]);
  t.equal((await receiver.waitFor('message')).body, body, 'delivered byte for byte');
  t.match(tor.requests.slice(before), [{ host: '127.0.0.1', port: prosody.c2sPort, atyp: 'ipv4' }], 'one Tor connection, by the map');
  t.ok(daemon.logs().some((l) => l.msg === 'routing' && l.mode === 'starttls'), 'through the SOCKS door, STARTTLS');
});

t.test('nbxmpp checks the certificate itself: a CA it does not trust fails the login, with GIO\'s reason', async (t) => {
  const otherDir = await mkdtemp(path.join(os.tmpdir(), 'xop-otherca-'));
  t.teardown(() => rm(otherDir, { recursive: true, force: true }));
  const other = await createTestPki(otherDir, ['example.test']);
  const result = await gajim({}, other.caCertPath);
  t.equal(result.code, 1);
  t.match(result.events.at(-1), { event: 'error', signal: 'disconnected', error: [/BAD_CERTIFICATE/, 'bad certificate'], tlsErrors: [/UNKNOWN_CA/] }, result.stderr.slice(-3000));
});

t.test('HTTP upload with libsoup through the SOCKS door: HTTPS, TLS only, the file arrives', async (t) => {
  const content = `uploaded through the door ${randomBytes(6).toString('hex')}\n`;
  const before = tor.requests.length;
  const result = await gajim({ upload: { filename: 'note.txt', content } });
  t.equal(result.code, 0, `upload exits 0 ${result.code === 0 ? '' : JSON.stringify(result.events) + result.stderr.slice(-2000) + prosody.logTail(20)}`);
  const slot = result.events.find((e) => e.event === 'slot');
  t.match(slot, { put: new RegExp(`^https://upload\\.example\\.test:${upload.httpsPort}/`) });
  t.match(result.events.find((e) => e.event === 'uploaded'), { status: 201 });
  t.match(tor.requests.slice(before), [{ host: '127.0.0.1', port: prosody.c2sPort }, { host: upload.domain, port: upload.httpsPort, atyp: 'domain' }], 'the upload host as a name, never resolved here');
  t.ok(daemon.logs().some((l) => l.msg === 'routing' && l.mode === 'https'), 'routed as HTTPS');
  const stored = path.join(prosody.dir, 'data', 'upload%2eexample%2etest', 'http_file_share');
  const files = await readdir(stored);
  t.equal(files.length, 1, 'one file stored');
  t.equal(await readFile(path.join(stored, files[0]!), 'utf8'), content, 'the file arrives byte for byte');
});

t.test('host-meta (what recent Gajim fetches first) for the domain itself through the SOCKS door: HTTPS, verified against example.test', async (t) => {
  const before = tor.requests.length;
  const result = await gajim({ hostMetaPort: upload.httpsPort });
  t.equal(result.code, 0, JSON.stringify(result.events) + result.stderr.slice(-1500));
  t.match(result.events, [{ event: 'host-meta', status: 404 }], "Prosody answers (it serves no host-meta): the TLS session through the door was verified");
  t.match(tor.requests.slice(before), [{ host: 'example.test', port: upload.httpsPort, atyp: 'domain' }], 'the domain as a name');
});

t.test('the same upload over plain HTTP is refused at the door: reply 0x02, nothing sent', async (t) => {
  const before = tor.requests.length;
  const result = await gajim({ upload: { filename: 'clear.txt', content: 'never in clear', plainHttpPort: upload.httpPort } });
  t.equal(result.code, 1);
  t.match(result.events.at(-1), { event: 'error', signal: 'upload', error: ['SOCKSv5 connection not allowed by ruleset.'] }, result.stderr.slice(-3000));
  t.match(tor.requests.slice(before), [{ host: '127.0.0.1', port: prosody.c2sPort }], 'Tor was asked for the login only');
  t.ok(daemon.logs().some((l) => l.msg === 'refused' && l.reason === 'socks-port-not-allowed'), 'refused as a port that is not allowed');
});

t.test('the log, even at trace level, holds no password, SASL data, body or JID', async (t) => {
  const log = daemon.rawLogs();
  for (const secret of [alicePassword, bobPassword, Buffer.from(`\0alice\0${alicePassword}`).toString('base64'), 'alice', 'bob@', 'gajim ', 'uploaded through']) {
    t.notOk(log.includes(secret), `no "${secret.slice(0, 6)}…" in the log`);
  }
});

t.test('strace: the daemon connected to Tor only, and resolved no name', async (t) => {
  t.equal(await daemon.stop(), 0, 'the daemon stopped cleanly');
  checkTorOnly(t, networkReport(await readFile(traceFile, 'utf8')), tor.port, 3);
});
