// Real libpurple: finch, with the accounts.xml that `pidgin configure` wrote, logs in to a
// real Prosody through the daemon (which reaches Prosody through a real SOCKS5 server):
// - through the connect-server door: the certificate question a user sees once (libpurple
//   checks the certificate against 127.0.0.1), a message received, a second login without it;
// - through the SOCKS door (proxy type "tor"): no question at all, the certificate is checked
//   against the JID's domain.
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { requireBuild, runCli } from '../cli/built-cli.js';
import { startDaemonProcess } from '../helpers/daemon-process.js';
import { startFinch } from '../helpers/finch.js';
import { startMicrosocks } from '../helpers/microsocks.js';
import { startProsody } from '../helpers/prosody.js';
import { runXmppClient } from '../helpers/xmpp-client.js';

if (!requireBuild(t)) process.exit(1);

const alicePassword = randomBytes(12).toString('base64url');
const bobPassword = randomBytes(12).toString('base64url');
const prosody = await startProsody({ users: [['alice', alicePassword], ['bob', bobPassword]] });
t.teardown(() => prosody.stop());
const socks = await startMicrosocks();
t.teardown(() => socks.stop());
const work = mkdtempSync(path.join(os.tmpdir(), 'xop-finch-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const map = path.join(work, 'map.json');
writeFileSync(map, JSON.stringify({ 'example.test': { host: '127.0.0.1', port: prosody.c2sPort } }));
// microsocks drops bytes sent before its reply (Tor keeps them as optimistic data): the
// pipelined path is tested through real Tor (test/e2e/tor-onion-login.ts).
const daemon = await startDaemonProcess(['--no-pipelining', '--tor', `127.0.0.1:${socks.port}`, '--socks', '127.0.0.1:0', '--map', map, '--log-level', 'debug'],
  { ...process.env, XMPP_ONION_PROXY_SYSTEM_MAP: '', XMPP_ONION_PROXY_USER_MAP: '' });
t.teardown(() => daemon.stop());
const socksDoor = (await daemon.waitForLog((l) => typeof l.socksPort === 'number')).socksPort as number;

// The account as a user would have made it in finch: encryption only "if available", no
// connect server, the global proxy settings; auto-login for finch.
function userAccount(resource: string): string {
  const dir = path.join(work, `purple-${resource}`);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'accounts.xml'), `<?xml version='1.0' encoding='UTF-8' ?>

<account version='1.0'>
	<account>
		<protocol>prpl-jabber</protocol>
		<name>alice@example.test/${resource}</name>
		<password>${alicePassword}</password>
		<settings>
			<setting name='connection_security' type='string'>opportunistic_tls</setting>
			<setting name='port' type='int'>5222</setting>
		</settings>
		<settings ui='gnt-purple'>
			<setting name='auto-login' type='bool'>1</setting>
		</settings>
		<current_error/>
	</account>
</account>
`, { mode: 0o600 });
  return dir;
}
const purple = userAccount('finch');

const boundLines = (resource = 'finch'): number => readFileSync(prosody.logPath, 'utf8').split('\n').filter((l) => l.includes(`Resource bound: alice@example.test/${resource}`)).length;
async function waitForLogin(count: number, resource = 'finch'): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (boundLines(resource) < count) {
    if (Date.now() > deadline) throw new Error(`finch did not log in (${count}); Prosody:\n${prosody.logTail(20)}\ndaemon:\n${daemon.rawLogs().slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

t.test('pidgin configure --door connect-server writes what finch uses', async (t) => {
  const result = await runCli(['pidgin', 'configure', '--door', 'connect-server', '--listen', `127.0.0.1:${daemon.port}`, '--purple-dir', purple]);
  t.equal(result.code, 0, result.stderr);
  t.notOk(result.stdout.includes(alicePassword), 'the password is not printed');
  const accounts = readFileSync(path.join(purple, 'accounts.xml'), 'utf8');
  t.match(accounts, "<setting name='connection_security' type='string'>require_tls</setting>");
  t.match(accounts, "<setting name='connect_server' type='string'>127.0.0.1</setting>");
  t.match(accounts, `<setting name='port' type='int'>${daemon.port}</setting>`);
  t.match(accounts, /<proxy>\s*<type>none<\/type>\s*<\/proxy>/);
});

t.test('finch logs in through the daemon: one certificate question, then a message arrives', async (t) => {
  const finch = await startFinch({ purpleDir: purple, caCertPath: prosody.caCertPath, workDir: path.join(work, 'finch-1') });
  t.teardown(() => finch.stop());

  // libpurple checks the certificate against the connect server's name (127.0.0.1), not the
  // JID's domain: the certificate is valid (test CA) but for example.test, so the user is asked.
  await finch.waitForScreen(/could not be validated/);
  t.equal(boundLines(), 0, 'no login before the answer');
  await finch.focusWindow('SSL Certificate Verification'); // also brings it in front of the buddy list
  const question = await finch.screen();
  t.match(question, /Accept certificate for 127\.0\.0\.1\?/);
  t.match(question, /The certificate for 127\.0\.0\.1 could not be validated\./);
  t.match(question, /The certificate claims to be from "example\.test" instead\./, 'the user is told the name the certificate has');
  t.match(question, /Accept.*Reject.*View Certificate/);
  t.comment(`what the user sees:\n${question.split('\n').filter((l) => /certificate|Accept/i.test(l)).join('\n')}`);
  await finch.sendKeys('Enter'); // "Accept" has the focus
  await waitForLogin(1);
  t.pass('Prosody bound alice@example.test/finch');
  t.ok(daemon.logs().some((l) => l.msg === 'TLS started'), 'the daemon saw STARTTLS through to TLS');

  const peer = readFileSync(path.join(purple, 'certificates/x509/tls_peers/127.0.0.1'), 'utf8');
  const server = readFileSync(path.join(prosody.dir, 'certs/server.crt'), 'utf8');
  t.equal(new X509Certificate(peer).fingerprint256, new X509Certificate(server).fingerprint256, 'libpurple remembered the server certificate under 127.0.0.1');

  const body = `hi-${randomBytes(4).toString('hex')}`; // short: finch's conversation window is narrow
  const sent = await runXmppClient(
    { service: `xmpp://127.0.0.1:${daemon.port}`, domain: 'example.test', username: 'bob', password: bobPassword, actions: [{ do: 'send', to: 'alice@example.test', body }] },
    { caCertPath: prosody.caCertPath, timeoutMs: 30_000 },
  );
  t.equal(sent.code, 0, JSON.stringify(sent.events) + sent.stderr);
  const screen = await finch.waitForScreen(body);
  t.match(screen, /bob@example\.test/, 'finch shows the message from bob');
  await finch.stop();

  const kept = readFileSync(path.join(purple, 'accounts.xml'), 'utf8');
  t.match(kept, "<setting name='connection_security' type='string'>require_tls</setting>", 'finch wrote accounts.xml back with require_tls');
  t.match(kept, "<setting name='connect_server' type='string'>127.0.0.1</setting>");
});

t.test('the next login asks nothing (the certificate is remembered)', async (t) => {
  const finch = await startFinch({ purpleDir: purple, caCertPath: prosody.caCertPath, workDir: path.join(work, 'finch-2') });
  t.teardown(() => finch.stop());
  await waitForLogin(2);
  t.notMatch(await finch.screen(), /could not be validated/);
});

t.test('doctor agrees: Tor (microsocks), the door, the map and the Pidgin account all pass', async (t) => {
  const result = await runCli(['doctor', '--tor', `127.0.0.1:${socks.port}`, '--listen', `127.0.0.1:${daemon.port}`, '--map', map, '--purple-dir', purple]);
  t.equal(result.code, 0, result.stdout);
  t.match(result.stdout, new RegExp(`✓ Pidgin alice@example\\.test/finch: the connect-server door 127\\.0\\.0\\.1:${daemon.port}, encryption required`));
});

t.test('through the SOCKS door (proxy type tor): no question, the certificate is checked against example.test', async (t) => {
  const dir = userAccount('finch-socks');
  const configured = await runCli(['pidgin', 'configure', '--door', 'socks', '--socks', `127.0.0.1:${socksDoor}`, '--purple-dir', dir]);
  t.equal(configured.code, 0, configured.stderr);
  t.match(readFileSync(path.join(dir, 'accounts.xml'), 'utf8'), new RegExp(`<proxy>\\s*<type>tor</type>\\s*<host>127\\.0\\.0\\.1</host>\\s*<port>${socksDoor}</port>\\s*</proxy>`));
  const finch = await startFinch({ purpleDir: dir, caCertPath: prosody.caCertPath, workDir: path.join(work, 'finch-socks') });
  t.teardown(() => finch.stop());
  await waitForLogin(1, 'finch-socks');
  t.pass('Prosody bound alice@example.test/finch-socks');
  t.notMatch(await finch.screen(), /could not be validated|Certificate Verification/, 'no certificate question');
  t.ok(daemon.logs().some((l) => l.door === 'socks' && l.msg === 'accepted'), 'the daemon accepted it at the SOCKS door');
  const doctor = await runCli(['doctor', '--tor', `127.0.0.1:${socks.port}`, '--listen', `127.0.0.1:${daemon.port}`, '--socks', `127.0.0.1:${socksDoor}`, '--map', map, '--purple-dir', dir]);
  t.equal(doctor.code, 0, doctor.stdout);
  t.match(doctor.stdout, `✓ Pidgin alice@example.test/finch-socks: the SOCKS door 127.0.0.1:${socksDoor}, encryption required`);
});
