// `doctor` against real sockets: a SOCKS5 fixture for Tor, the daemon itself, other listeners,
// map files and Pidgin folders. Exit 0 only when every check passes.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { answersLikeDaemon } from '../../src/deploy/doctor/connect-door-probe.js';
import { listenerOwners } from '../../src/deploy/doctor/listener-owner.js';
import { socks5Greeting } from '../../src/proxy/tor-probe.js';
import { requireBuild, runCli } from '../cli/built-cli.js';
import { startDaemonProcess } from '../helpers/daemon-process.js';
import { FEATURES_STARTTLS, startFakeXmppServer } from '../helpers/fake-xmpp.js';
import { SERVER_HEADER } from '../helpers/policy-driver.js';
import { freePort } from '../helpers/ports.js';
import { startSocks5Fixture } from '../helpers/socks5-server.js';

const ACCOUNTS = readFileSync(fileURLToPath(new URL('../fixtures/purple/accounts.xml', import.meta.url)), 'utf8');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'xop-doctor-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const ISOLATED_MAPS = { XMPP_ONION_PROXY_SYSTEM_MAP: '', XMPP_ONION_PROXY_USER_MAP: '' };

if (!requireBuild(t)) process.exit(1);

const tor = await startSocks5Fixture({ resolve: () => undefined });
t.teardown(() => tor.close());
const daemon = await startDaemonProcess(['--tor', `127.0.0.1:${tor.port}`, '--socks', '127.0.0.1:0'], { ...process.env, ...ISOLATED_MAPS });
t.teardown(() => daemon.stop());
const socksPort = (await daemon.waitForLog((l) => typeof l.socksPort === 'number')).socksPort as number;

let dirs = 0;
function folder(): string {
  const dir = path.join(tmp, `d${++dirs}`);
  mkdirSync(dir);
  return dir;
}

async function listening(): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

t.test('everything right: ✓ on every line, exit 0', async (t) => {
  const purple = folder();
  writeFileSync(path.join(purple, 'accounts.xml'), ACCOUNTS, { mode: 0o600 });
  const configured = await runCli(['pidgin', 'configure', '--purple-dir', purple, '--socks', `127.0.0.1:${socksPort}`]);
  t.equal(configured.code, 0, configured.stderr);
  const map = path.join(folder(), 'map.json');
  writeFileSync(map, JSON.stringify({ 'example.test': { host: '127.0.0.1', port: 15222 } }));
  const result = await runCli(['doctor', '--tor', `127.0.0.1:${tor.port}`, '--listen', `127.0.0.1:${daemon.port}`, '--socks', `127.0.0.1:${socksPort}`, '--map', map, '--purple-dir', purple]);
  t.equal(result.code, 0, result.stdout + result.stderr);
  const lines = result.stdout.trimEnd().split('\n');
  t.match(lines, [
    /^✓ Node\.js \d+\.\d+\.\d+ \(20 or later is needed\)$/,
    new RegExp(`^✓ Tor's SOCKS port 127\\.0\\.0\\.1:${tor.port} answers SOCKS5$`),
    new RegExp(`^✓ the connect-server door 127\\.0\\.0\\.1:${daemon.port}: xmpp-onion-proxy listens there \\(pid ${daemon.child.pid}\\)$`),
    new RegExp(`^✓ the SOCKS door 127\\.0\\.0\\.1:${socksPort}: xmpp-onion-proxy listens there \\(pid ${daemon.child.pid}\\)$`),
    /^✓ onion map: \d+ entries \(bundled, map\)$/,
    /^✓ Pidgin alice@example\.org\/Home: the SOCKS door 127\.0\.0\.1:\d+, encryption required$/,
    /^✓ Pidgin bob@example\.net\/laptop: /,
    /^✓ Pidgin carol@example\.com: /,
    /^All checks passed\.$/,
  ]);
  t.equal(lines.length, 9);
  t.equal(tor.requests.length, 0, 'Tor was greeted, never asked to connect anywhere');
});

t.test('free doors, no Pidgin settings, --config: passes', async (t) => {
  const [listen, socks] = [await freePort(), await freePort()];
  const config = path.join(folder(), 'config.json');
  writeFileSync(config, JSON.stringify({ listen: `127.0.0.1:${listen}`, socks: `127.0.0.1:${socks}`, tor: `127.0.0.1:${tor.port}` }));
  const result = await runCli(['doctor', '--config', config, '--purple-dir', folder()]);
  t.equal(result.code, 0, result.stdout);
  t.match(result.stdout, `✓ the connect-server door 127.0.0.1:${listen}: free, the daemon can open it`);
  t.match(result.stdout, `✓ the SOCKS door 127.0.0.1:${socks}: free`);
  t.match(result.stdout, /· Pidgin: no .*accounts\.xml, nothing to check/);
});

t.test('each problem gets a ✗ and a fix; exit 1', async (t) => {
  const closed = await freePort();
  const taken = await listening();
  t.teardown(() => taken.close());
  const badMap = path.join(folder(), 'bad.json');
  writeFileSync(badMap, JSON.stringify({ 'example.test': { onion: 'notanonion.onion' } }));
  const purple = folder();
  writeFileSync(path.join(purple, 'accounts.xml'), ACCOUNTS, { mode: 0o600 });
  const result = await runCli(['doctor', '--tor', `127.0.0.1:${closed}`, '--listen', `127.0.0.1:${taken.port}`, '--map', badMap, '--purple-dir', purple]);
  t.equal(result.code, 1);
  const out = result.stdout;
  t.match(out, new RegExp(`✗ Tor's SOCKS port 127\\.0\\.0\\.1:${closed}: nothing listens there \\(connection refused\\)\\n    fix: start Tor`));
  t.match(out, new RegExp(`✗ the connect-server door 127\\.0\\.0\\.1:${taken.port}: taken by node \\(pid ${process.pid}\\)\\n    fix: stop it, or give the daemon another port \\(--listen 127\\.0\\.0\\.1:PORT\\)`));
  t.match(out, /· the SOCKS door is off/);
  t.match(out, new RegExp(`✗ invalid map ${badMap.replace(/[.]/g, '\\.')}: example\\.test: .*\\n    fix: correct .*onionmap verify`));
  t.match(out, /✗ Pidgin alice@example\.org\/Home: not set for the connect-server door .*: connection_security: opportunistic_tls → require_tls; auth_plain_in_clear: yes → no; connect_server: xmpp\.example\.org → 127\.0\.0\.1;.*\n {4}fix: xmpp-onion-proxy pidgin configure --account alice@example\.org --door connect-server --listen 127\.0\.0\.1:\d+ --purple-dir \S+ \(with Pidgin closed\)/);
  t.match(out, /✗ Pidgin bob@example\.net\/laptop: not set for the SOCKS door 127\.0\.0\.1:9055: port: 5223 → 5222; proxy: socks5 127\.0\.0\.1:9050 with a user name\/password → tor 127\.0\.0\.1:9055/, 'bob looks meant for the SOCKS door');
  t.match(out, /\n6 problems: see the fix under each ✗\.\n$/);
  for (const secret of ['hunter2', 'proxy-secret', 'wörd']) t.notOk(out.includes(secret), 'no password printed');
});

t.test('Pidgin set for the SOCKS door while the daemon has none; Tor pointed at the SOCKS door', async (t) => {
  const purple = folder();
  writeFileSync(path.join(purple, 'accounts.xml'), ACCOUNTS, { mode: 0o600 });
  t.equal((await runCli(['pidgin', 'configure', '--purple-dir', purple])).code, 0);
  const free = await freePort();
  const off = await runCli(['doctor', '--tor', `127.0.0.1:${tor.port}`, '--listen', `127.0.0.1:${free}`, '--purple-dir', purple]);
  t.equal(off.code, 1);
  t.match(off.stdout, /✗ Pidgin alice@example\.org\/Home: set for the SOCKS door 127\.0\.0\.1:9055, but the daemon's SOCKS door is off\n {4}fix: start the daemon with --socks 127\.0\.0\.1:9055/);
  const loop = await runCli(['doctor', '--tor', '127.0.0.1:9055', '--socks', '127.0.0.1:9055', '--listen', `127.0.0.1:${free}`, '--purple-dir', purple]);
  t.match(loop.stdout, /✗ --tor 127\.0\.0\.1:9055 is the daemon's own SOCKS door: connections would loop/);
});

t.test('Tor through a Unix socket; something that is not SOCKS5', async (t) => {
  const socketPath = path.join(folder(), 'socks');
  const unix = net.createServer((s) => s.once('data', () => s.end(Buffer.from([5, 0]))));
  await new Promise<void>((resolve) => unix.listen(socketPath, resolve));
  t.teardown(() => new Promise<void>((resolve) => unix.close(() => resolve())));
  t.same(await socks5Greeting({ kind: 'unix', path: socketPath }), { ok: true });
  const free = await freePort();
  const viaUnix = await runCli(['doctor', '--tor', `unix:${socketPath}`, '--listen', `127.0.0.1:${free}`, '--purple-dir', folder()]);
  t.equal(viaUnix.code, 0, viaUnix.stdout);
  t.match(viaUnix.stdout, `✓ Tor's SOCKS port unix:${socketPath} answers SOCKS5`);
  const missing = await runCli(['doctor', '--tor', `unix:${socketPath}-missing`, '--listen', `127.0.0.1:${free}`, '--purple-dir', folder()]);
  t.match(missing.stdout, /✗ Tor's SOCKS socket unix:\S+-missing does not exist\n {4}fix: add `SocksPort unix:\S+ WorldWritable` to \/etc\/tor\/torrc/);

  const xmpp = await startFakeXmppServer((socket) => socket.once('data', () => socket.write(SERVER_HEADER + FEATURES_STARTTLS)));
  t.teardown(() => xmpp.close());
  const notSocks = await socks5Greeting({ kind: 'tcp', host: '127.0.0.1', port: xmpp.port });
  t.match(notSocks, { ok: false, problem: 'not-socks5' });
  const http = await runCli(['doctor', '--tor', `127.0.0.1:${xmpp.port}`, '--listen', `127.0.0.1:${free}`, '--purple-dir', folder()]);
  t.match(http.stdout, /✗ Tor's SOCKS port 127\.0\.0\.1:\d+: it answered "<\?xml.*", not SOCKS5\n {4}fix: /);
});

t.test('how a listener is recognised', async (t) => {
  t.ok(await answersLikeDaemon('127.0.0.1', daemon.port), 'the daemon\'s connect-server door answers in its own words');
  const xmpp = await startFakeXmppServer((socket) => socket.once('data', () => socket.end(`${SERVER_HEADER}<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`)));
  t.teardown(() => xmpp.close());
  t.notOk(await answersLikeDaemon('127.0.0.1', xmpp.port), 'an XMPP server is not the daemon');
  const owners = listenerOwners(daemon.port);
  t.match(owners, [{ pid: daemon.child.pid, name: 'node', isDaemon: true, isSystemd: false }], '/proc names the daemon');
  t.same(listenerOwners(await freePort()), [], 'nobody on a free port');
});
