// `doctor --tor-control`: Tor's bootstrap read from its control port. Real Tor (the private
// network's client, test/helpers/tor-shared.ts), a closed port, and fake control ports; all on
// 127.0.0.1.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { torBootstrapPhase } from '../../src/deploy/doctor/check-tor-bootstrap.js';
import { requireBuild, runCli } from '../cli/built-cli.js';
import { freePort } from '../helpers/ports.js';
import { useTorNetwork } from '../helpers/tor-shared.js';

if (!requireBuild(t)) process.exit(1);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'xop-doctor-bootstrap-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

const tor = await useTorNetwork(t);
t.comment(`private Tor network up in ${tor.startupMs} ms (shared: ${tor.shared})`);

let passwordFile: string;
let listen: number;
let purple: string;

t.before(async () => {
  if (tor.controlPassword === undefined) throw new Error('the private Tor network has no control password');
  passwordFile = path.join(tmp, 'control-password');
  writeFileSync(passwordFile, `${tor.controlPassword}\n`, { mode: 0o600 });
  listen = await freePort();
  purple = path.join(tmp, 'purple');
});

/** doctor with Tor's SOCKS port of the private network, a free connect-server door and no Pidgin. */
const doctor = (...extra: string[]) => runCli(['doctor', '--tor', `127.0.0.1:${tor.socksPort}`, '--listen', `127.0.0.1:${listen}`, '--purple-dir', purple, ...extra]);

const noSecret = (t: Test, text: string): void => {
  const password = tor.controlPassword ?? '';
  t.notOk(text.includes(password), 'the password is never printed');
  t.notOk(text.toLowerCase().includes(Buffer.from(password).toString('hex').toLowerCase()), 'nor its hex form');
};

/** A fake control port: `answer` gets every line the client sends and returns what to write back (null: close). */
async function fakeControl(t: Test, answer: (line: string) => string | null): Promise<{ port: number; received: string[] }> {
  const received: string[] = [];
  const server = net.createServer((socket) => {
    let buffered = '';
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        received.push(line);
        const reply = answer(line);
        if (reply === null) socket.end();
        else if (reply !== '') socket.write(reply);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as net.AddressInfo).port, received };
}

t.test("real Tor's control port, with the password from a 0600 file: ✓ bootstrapped", async (t) => {
  const started = Date.now();
  const result = await doctor('--tor-control', `127.0.0.1:${tor.controlPort}`, '--tor-control-password-file', passwordFile);
  t.comment(`doctor took ${Date.now() - started} ms:\n${result.stdout}`);
  t.equal(result.code, 0, result.stdout + result.stderr);
  const lines = result.stdout.trimEnd().split('\n');
  t.match(lines[1], new RegExp(`^✓ Tor's SOCKS port 127\\.0\\.0\\.1:${tor.socksPort} answers SOCKS5$`));
  t.equal(lines[2], `✓ Tor's control port 127.0.0.1:${tor.controlPort}: Tor has bootstrapped (100%: Done)`, 'the bootstrap line follows the SOCKS line');
  t.match(result.stdout, /\nAll checks passed\.\n$/);
  noSecret(t, result.stdout + result.stderr);
});

t.test('a closed control port: ✗ nothing listens, with a fix', async (t) => {
  const closed = await freePort();
  const result = await doctor('--tor-control', `127.0.0.1:${closed}`, '--tor-control-password-file', passwordFile);
  t.equal(result.code, 1);
  t.match(result.stdout, new RegExp(`✗ Tor's control port 127\\.0\\.0\\.1:${closed}: nothing listens there \\(connection refused\\)\\n {4}fix: add \`ControlPort 9051\` and \`HashedControlPassword\``));
  t.match(result.stdout, /\n1 problem: see the fix under each ✗\.\n$/, 'the only problem');
});

t.test('a wrong password, or none: ✗ in words, and the password never printed', async (t) => {
  const wrong = path.join(tmp, 'wrong-password');
  writeFileSync(wrong, 'not the password\n', { mode: 0o600 });
  const bad = await doctor('--tor-control', `127.0.0.1:${tor.controlPort}`, '--tor-control-password-file', wrong);
  t.equal(bad.code, 1);
  t.match(bad.stdout, new RegExp(`✗ Tor's control port 127\\.0\\.0\\.1:${tor.controlPort}: Tor did not accept the password \\(515 Authentication failed[^)]*\\)\\n {4}fix: put in --tor-control-password-file the password`));
  t.notOk(bad.stdout.includes('not the password'), 'the wrong password is not printed either');

  const none = await doctor('--tor-control', `127.0.0.1:${tor.controlPort}`);
  t.equal(none.code, 1);
  t.match(none.stdout, /✗ Tor's control port \S+: Tor did not accept a connection without a password \(5\d\d [^)]+\)\n {4}fix: give --tor-control-password-file/);
});

t.test('a fake control port answering 515 Authentication failed: ✗ in words; the password went hex-encoded, nothing else was asked', async (t) => {
  const fake = await fakeControl(t, () => '515 Authentication failed\r\n');
  const result = await doctor('--tor-control', `127.0.0.1:${fake.port}`, '--tor-control-password-file', passwordFile);
  t.equal(result.code, 1);
  t.match(result.stdout, `✗ Tor's control port 127.0.0.1:${fake.port}: Tor did not accept the password (515 Authentication failed)\n    fix: `);
  t.same(fake.received, [`AUTHENTICATE ${Buffer.from(tor.controlPassword ?? '').toString('hex').toUpperCase()}`], 'one AUTHENTICATE, hex-encoded, and no GETINFO');
  noSecret(t, result.stdout + result.stderr);
});

t.test('fake control ports: not bootstrapped, an echo of the password, silence, not a control port', async (t) => {
  const target = (port: number, file?: string) => ({ endpoint: { kind: 'tcp' as const, host: '127.0.0.1', port }, ...(file !== undefined ? { passwordFile: file } : {}) });
  const halfway = await fakeControl(t, (line) => line.startsWith('AUTHENTICATE') ? '250 OK\r\n'
    : line === 'GETINFO status/bootstrap-phase' ? '250-status/bootstrap-phase=WARN BOOTSTRAP PROGRESS=45 TAG=requesting_descriptors SUMMARY="Asking for relay descriptors" WARNING="Clock skew"\r\n250 OK\r\n'
      : line === 'QUIT' ? '250 closing connection\r\n' : '510 Unrecognized command\r\n');
  const result = await doctor('--tor-control', `127.0.0.1:${halfway.port}`, '--tor-control-password-file', passwordFile);
  t.equal(result.code, 1);
  t.match(result.stdout, `✗ Tor's control port 127.0.0.1:${halfway.port}: Tor has not finished bootstrapping: 45% (Asking for relay descriptors); Tor warns: Clock skew\n    fix: wait a minute`);
  t.match(halfway.received, [/^AUTHENTICATE [0-9A-F]+$/, 'GETINFO status/bootstrap-phase']);

  const echo = await fakeControl(t, (line) => `515 you said ${line} aka ${tor.controlPassword ?? ''}\r\n`);
  const echoed = await torBootstrapPhase(target(echo.port, passwordFile));
  t.match(echoed, { ok: false, problem: 'auth' });
  t.notOk(JSON.stringify(echoed).includes(tor.controlPassword ?? ''), 'a server repeating the password does not get it printed');
  t.notOk(JSON.stringify(echoed).toUpperCase().includes(Buffer.from(tor.controlPassword ?? '').toString('hex').toUpperCase()), 'nor its hex form');

  const silent = await fakeControl(t, () => '');
  t.same(await torBootstrapPhase(target(silent.port), 300), { ok: false, problem: 'timeout', detail: 'no answer within 0.3 s' });

  const ssh = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.resume(); // reads on, so it sees the client's close (server.close() waits for that)
    socket.end('SSH-2.0-OpenSSH_9.2\r\n');
  });
  await new Promise<void>((resolve) => ssh.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => ssh.close(() => resolve())));
  t.match(await torBootstrapPhase(target((ssh.address() as net.AddressInfo).port)), { ok: false, problem: 'not-control' });

  t.match(await torBootstrapPhase(target(halfway.port, path.join(tmp, 'missing'))), { ok: false, problem: 'password-file', detail: /missing does not exist$/ });
});

t.test('usage: the control port must be on this machine; a password file needs --tor-control', async (t) => {
  const remote = await doctor('--tor-control', '192.0.2.1:9051', '--tor-control-password-file', passwordFile);
  t.equal(remote.code, 2);
  t.match(remote.stderr, /--tor-control: 192\.0\.2\.1 is not this machine/);
  const lone = await doctor('--tor-control-password-file', passwordFile);
  t.equal(lone.code, 2);
  t.match(lone.stderr, /--tor-control-password-file needs --tor-control/);
});
