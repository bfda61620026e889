// The clients whose recommended set-up is the connect-server door, each with the real Debian
// package it connects with: Poezio (python3-slixmpp, `custom_host`/`custom_port`,
// test/fixtures/poezio-client.py) and Profanity (the real `profanity` in tmux, `server` and
// `port` on its account, `tls force`). Each logs in to a real Prosody (STARTTLS required)
// through the daemon, and a message reaches a second account.
import { randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { createTestPki } from '../helpers/certs.js';
import { checkTorOnly, networkReport, startTracedDaemon } from '../helpers/adversary-strace.js';
import { startProfanity, writeProfanityAccount } from '../helpers/profanity.js';
import { runCli } from '../cli/built-cli.js';
import { prosodyBehindTor } from '../helpers/prosody-behind-tor.js';
import { runPythonClient } from '../helpers/python-client.js';
import { startXmppClient } from '../helpers/xmpp-client.js';

const { prosody, tor, passwords, dir, mapFile } = await prosodyBehindTor(t);
const { alice: alicePassword, bob: bobPassword } = passwords;
const traceFile = path.join(dir, 'daemon.strace');
const daemon = await startTracedDaemon(traceFile, ['--tor', `127.0.0.1:${tor.port}`, '--map', mapFile, '--log-level', 'trace']);
t.teardown(() => daemon.stop());

/** What Prosody's certificate answers for: the domain, and (never) the connect host. */
function serverNames(): { host: string | undefined; ip: string | undefined } {
  const cert = new X509Certificate(readFileSync(path.join(prosody.dir, 'certs', 'server.crt')));
  return { host: cert.checkHost('example.test'), ip: cert.checkIP('127.0.0.1') };
}

/** Bob, online through the daemon, waiting for one message from alice. */
async function bobWaiting(t: Test) {
  const receiver = startXmppClient({ service: `xmpp://127.0.0.1:${daemon.port}`, domain: 'example.test', username: 'bob', password: bobPassword, resource: `rx${randomBytes(3).toString('hex')}`, actions: [{ do: 'receive', count: 1, from: 'alice@example.test' }] }, { caCertPath: prosody.caCertPath });
  t.teardown(() => receiver.stop());
  await receiver.waitFor('online');
  return receiver;
}

const poezio = (caCertPath: string, send?: { to: string; body: string }) =>
  runPythonClient('poezio-client.py', { host: '127.0.0.1', port: daemon.port, jid: 'alice@example.test/poezio', password: alicePassword, caCertPath, ...(send ? { send } : {}) });

t.test('Poezio (slixmpp) with custom_host 127.0.0.1 and custom_port: logs in through the door, message delivered', async (t) => {
  const body = `poezio ${randomBytes(4).toString('hex')} 🧅`;
  const receiver = await bobWaiting(t);
  const result = await poezio(prosody.caCertPath, { to: 'bob@example.test', body });
  t.equal(result.code, 0, `slixmpp exits 0 ${result.code === 0 ? '' : JSON.stringify(result.events) + result.stderr.slice(-2000)}`);
  t.match(result.events, [{ event: 'connected', jid: 'alice@example.test', tls: /^TLSv1\.[23]$/ }, { event: 'sent' }, { event: 'done' }]);
  t.equal((await receiver.waitFor('message')).body, body, 'delivered byte for byte');
});

t.test('slixmpp checks the certificate against the JID\'s domain, not the connect host', async (t) => {
  const otherDir = await mkdtemp(path.join(os.tmpdir(), 'xop-otherca-'));
  t.teardown(() => rm(otherDir, { recursive: true, force: true }));
  const other = await createTestPki(otherDir, ['example.test']);
  const untrusted = await poezio(other.caCertPath);
  t.equal(untrusted.code, 1);
  t.match(untrusted.events, [{ event: 'error', what: 'ssl_invalid_chain', error: /CERTIFICATE_VERIFY_FAILED/ }]);
  // Prosody's certificate names example.test only: the logins here could not pass a check against 127.0.0.1.
  t.same(serverNames(), { host: 'example.test', ip: undefined });
});

t.test('Profanity (libstrophe) with server 127.0.0.1, port and tls force: logs in through the door, message delivered', async (t) => {
  const body = `profanity ${randomBytes(4).toString('hex')}`;
  const receiver = await bobWaiting(t);
  // The account as a user adds it, then set by `configure profanity` (the built command).
  const workDir = await mkdtemp(path.join(dir, 'profanity-'));
  const dataDir = writeProfanityAccount({ workDir, caCertPath: prosody.caCertPath, jid: 'alice@example.test', password: alicePassword, settings: { port: '5222' } });
  const configured = await runCli(['configure', 'profanity', '--data-dir', dataDir, '--listen', `127.0.0.1:${daemon.port}`]);
  t.equal(configured.code, 0, configured.stderr);
  t.match(configured.stdout, new RegExp(`server: \\(not set\\) → 127\\.0\\.0\\.1\\n    port: 5222 → ${daemon.port}\\n    tls\\.policy: \\(not set\\) → force`));
  t.notOk(configured.stdout.includes(alicePassword), 'no password printed');
  const again = await runCli(['configure', 'profanity', '--data-dir', dataDir, '--listen', `127.0.0.1:${daemon.port}`]);
  t.match(again.stdout, /already set, nothing to change\nNothing to change\.\n$/, 'a second run changes nothing');
  const doctor = await runCli(['doctor', '--listen', `127.0.0.1:${daemon.port}`, '--tor', `127.0.0.1:${tor.port}`, '--profanity-dir', dataDir, '--purple-dir', path.join(workDir, 'no-pidgin')]);
  t.match(doctor.stdout, new RegExp(`✓ Profanity alice@example\\.test: the connect-server door 127\\.0\\.0\\.1:${daemon.port}, tls force`), 'doctor agrees');
  const profanity = await startProfanity({ workDir, caCertPath: prosody.caCertPath, jid: 'alice@example.test' });
  t.teardown(() => profanity.stop());
  await profanity.waitForScreen(/logged in successfully/i, 30_000);
  await profanity.sendKeys(`/msg bob@example.test ${body}`, 'Enter');
  t.equal((await receiver.waitFor('message')).body, body, 'delivered');
  // libstrophe accepted a certificate that names example.test only, reached at 127.0.0.1: it checks the domain.
  t.same(serverNames(), { host: 'example.test', ip: undefined });
});

t.test('libstrophe checks the certificate: a CA it does not trust stops the login at profanity\'s certificate question', async (t) => {
  const otherDir = await mkdtemp(path.join(os.tmpdir(), 'xop-otherca-'));
  t.teardown(() => rm(otherDir, { recursive: true, force: true }));
  const other = await createTestPki(otherDir, ['example.test']);
  const workDir = await mkdtemp(path.join(dir, 'profanity-'));
  writeProfanityAccount({ workDir, caCertPath: other.caCertPath, jid: 'alice@example.test', password: alicePassword, settings: { server: '127.0.0.1', port: String(daemon.port), 'tls.policy': 'force' } });
  const profanity = await startProfanity({ workDir, caCertPath: other.caCertPath, jid: 'alice@example.test' });
  t.teardown(() => profanity.stop());
  const screen = await profanity.waitForScreen(/Use '\/tls deny' to reject this certificate/, 30_000);
  t.match(screen, /TLS certificate verification failed: unable to get local issuer certificate/);
  t.notMatch(screen, /logged in successfully/i);
});

t.test('the log, even at trace level, holds no password, SASL data, body or JID', async (t) => {
  const log = daemon.rawLogs();
  t.ok(daemon.logs().filter((l) => l.msg === 'TLS started').length >= 4, 'every login went through TLS');
  for (const secret of [alicePassword, bobPassword, Buffer.from(`\0alice\0${alicePassword}`).toString('base64'), 'alice', 'bob@', 'poezio ', 'profanity ']) {
    t.notOk(log.includes(secret), `no "${secret.slice(0, 6)}…" in the log`);
  }
});

t.test('strace: the daemon connected to Tor only, and resolved no name', async (t) => {
  t.equal(await daemon.stop(), 0, 'the daemon stopped cleanly');
  checkTorOnly(t, networkReport(await readFile(traceFile, 'utf8')), tor.port, 4);
});
