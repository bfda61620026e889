// The three ways to install a release, built from this checkout by scripts/release: the one-file
// build runs from a folder with no node_modules above it and serves a real login; the npm
// tarball installs into a prefix with no development dependency and serves a real login; the
// Debian package installs with apt-get, runs, passes systemd's checks with the repository's
// scores, and leaves nothing behind when purged.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { startDaemonProcess } from '../helpers/daemon-process.js';
import { prosodyBehindTor } from '../helpers/prosody-behind-tor.js';
import { runCommand } from '../helpers/run-command.js';
import { runXmppClient, startXmppClient } from '../helpers/xmpp-client.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const VERSION = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'xop-packages-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
const out = path.join(tmp, 'release');
const built = await runCommand(path.join(REPO, 'scripts/release'), ['--skip-build', out], { cwd: REPO, timeoutMs: 300_000 });
if (built.code !== 0) throw new Error(`scripts/release failed: ${built.stderr}${built.stdout}`);

const { prosody, tor, passwords, mapFile: map } = await prosodyBehindTor(t);
const { alice: alicePassword, bob: bobPassword } = passwords;

/** One login and a message through a daemon started from `command`. */
async function loginThrough(t: Test, command: readonly string[]): Promise<void> {
  const daemon = await startDaemonProcess(['--tor', `127.0.0.1:${tor.port}`, '--map', map], {}, command);
  t.teardown(() => daemon.stop());
  const service = `xmpp://127.0.0.1:${daemon.port}`;
  const body = `packaged ${randomBytes(4).toString('hex')}`;
  const receiver = startXmppClient({ service, domain: 'example.test', username: 'bob', password: bobPassword, resource: `rx${randomBytes(3).toString('hex')}`, actions: [{ do: 'receive', count: 1 }] }, { caCertPath: prosody.caCertPath });
  t.teardown(() => receiver.stop());
  await receiver.waitFor('online');
  const sent = await runXmppClient({ service, domain: 'example.test', username: 'alice', password: alicePassword, actions: [{ do: 'send', to: 'bob@example.test', body }] }, { caCertPath: prosody.caCertPath });
  t.equal(sent.code, 0, JSON.stringify(sent.events));
  t.equal((await receiver.waitFor('message')).body, body, 'a message delivered through it');
}

t.test('scripts/release: three artifacts and their SHA-256 sums', async (t) => {
  t.same(readdirSync(out).sort(), ['SHA256SUMS', `xmpp-onion-proxy-${VERSION}.tar.gz`, `xmpp-onion-proxy-${VERSION}.tgz`, `xmpp-onion-proxy_${VERSION}_all.deb`]);
  const check = await runCommand('sha256sum', ['--check', 'SHA256SUMS'], { cwd: out });
  t.equal(check.code, 0, check.stdout + check.stderr);
  t.equal(check.stdout.match(/: OK$/gm)?.length, 3);
});

t.test('the one-file build runs from a folder with no node_modules above it, and serves a login', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'xop-onefile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await runCommand('tar', ['-xzf', path.join(out, `xmpp-onion-proxy-${VERSION}.tar.gz`), '-C', dir]);
  const top = path.join(dir, `xmpp-onion-proxy-${VERSION}`);
  for (let folder = top; folder !== path.dirname(folder); folder = path.dirname(folder)) t.notOk(existsSync(path.join(folder, 'node_modules')), `no node_modules in ${folder}`);
  const bundle = path.join(top, 'dist/cli/xmpp-onion-proxy.mjs');
  t.same(readdirSync(path.join(top, 'dist/cli')), ['xmpp-onion-proxy.mjs'], 'one file of code');
  const version = await runCommand(process.execPath, [bundle, '--version']);
  t.equal(version.stdout.trim(), VERSION, '--version');
  const lookup = await runCommand(process.execPath, [bundle, 'onionmap', 'lookup', 'xmpp.is']);
  t.match(lookup.stdout, /6voaf7iamjpufgwoulypzwwecsm2nu7j5jpgadav2rfqixmpl4d65kid\.onion/, 'the bundled map is beside it');
  await loginThrough(t, [process.execPath, bundle]);
});

t.test('the npm tarball installs into a prefix: a working command, no development dependency, no tests', async (t) => {
  const prefix = path.join(tmp, 'prefix');
  const installed = await runCommand('npm', ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', path.join(out, `xmpp-onion-proxy-${VERSION}.tgz`)], { timeoutMs: 180_000 });
  t.equal(installed.code, 0, installed.stderr);
  const command = path.join(prefix, 'bin', 'xmpp-onion-proxy');
  t.equal((await runCommand(command, ['--version'])).stdout.trim(), VERSION, '--version');
  const root = path.join(prefix, 'lib', 'node_modules', 'xmpp-onion-proxy');
  const modules = readdirSync(path.join(root, 'node_modules'));
  for (const dev of ['tap', 'typescript', 'eslint', 'esbuild', 'node-forge', '@xmpp']) t.notOk(modules.includes(dev), `no ${dev}`);
  for (const folder of ['test', 'bench', 'src', 'scripts']) t.notOk(existsSync(path.join(root, folder)), `no ${folder}/`);
  await loginThrough(t, [command]);
});

t.test('the Debian package: apt-get install, run, systemd checks, purge leaves nothing', async (t) => {
  const before = await runCommand('dpkg-query', ['-W', '-f=${Status}', 'xmpp-onion-proxy']);
  if (before.stdout.includes('installed')) return t.fail('an xmpp-onion-proxy package is installed on this machine already: this test would remove it');
  const deb = path.join(out, `xmpp-onion-proxy_${VERSION}_all.deb`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const lintian = await runCommand('lintian', ['--tag-display-limit', '0', deb]);
  t.equal(lintian.stdout.trim(), '', 'lintian: no tag at all');
  t.teardown(async () => {
    await runCommand('apt-get', ['purge', '-y', '-qq', 'xmpp-onion-proxy'], { env, timeoutMs: 120_000 });
  });
  const install = await runCommand('apt-get', ['install', '-y', '-qq', '--no-install-recommends', deb], { env, timeoutMs: 300_000 });
  t.equal(install.code, 0, install.stderr);
  t.equal((await runCommand('/usr/bin/xmpp-onion-proxy', ['--version'])).stdout.trim(), VERSION, '--version');
  const doctor = await runCommand('/usr/bin/xmpp-onion-proxy', ['doctor', '--config', '/etc/xmpp-onion-proxy/config.json', '--tor', `127.0.0.1:${tor.port}`, '--listen', '127.0.0.1:1', '--purple-dir', path.join(tmp, 'none')]);
  t.match(doctor.stdout, /^✓ Node\.js \d+/m, 'doctor runs from the installed package');
  t.match(doctor.stdout, /✓ onion map: \d+ entries/, 'and finds the bundled map');
  t.match(readFileSync('/etc/xmpp-onion-proxy/config.json', 'utf8'), /"tor"/, 'the default configuration');
  t.match((await runCommand('dpkg-query', ['-W', '-f=${Conffiles}', 'xmpp-onion-proxy'])).stdout, /\/etc\/xmpp-onion-proxy\/config\.json/, 'a conffile');

  // From the installed path with the installed configuration (the doors moved off their fixed ports), stopped with SIGTERM.
  const daemon = await startDaemonProcess(['--config', '/etc/xmpp-onion-proxy/config.json', '--socks', '127.0.0.1:0', '--tor', `127.0.0.1:${tor.port}`], {}, ['/usr/bin/xmpp-onion-proxy']);
  t.ok(daemon.port > 0 && daemon.socksPort! > 0, 'listening');
  const code = await daemon.stop();
  t.equal(code, 0, 'SIGTERM: exit 0');

  const units = ['xmpp-onion-proxy.service', 'xmpp-onion-proxy.socket', 'xmpp-onion-proxy-socks.socket'].map((u) => `/usr/lib/systemd/system/${u}`);
  const verify = await runCommand('systemd-analyze', ['verify', ...units]);
  t.equal(verify.code, 0, verify.stderr);
  t.equal(verify.stderr + verify.stdout, '', 'systemd-analyze verify says nothing');
  const score = async (unit: string): Promise<string | undefined> => /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec((await runCommand('systemd-analyze', ['security', '--offline=true', unit])).stdout)?.[1];
  const installed = await score(units[0]!);
  t.ok(installed !== undefined, `exposure ${installed}`);
  t.equal(installed, await score(path.join(REPO, 'systemd/xmpp-onion-proxy.service')), 'the same exposure as the repository\'s unit');
  t.equal((await runCommand('systemctl', ['is-enabled', 'xmpp-onion-proxy.socket'])).stdout.trim() || 'disabled', 'disabled', 'nothing enabled by surprise');

  const purge = await runCommand('apt-get', ['purge', '-y', '-qq', 'xmpp-onion-proxy'], { env, timeoutMs: 120_000 });
  t.equal(purge.code, 0, purge.stderr);
  for (const left of ['/usr/bin/xmpp-onion-proxy', '/usr/lib/xmpp-onion-proxy', '/etc/xmpp-onion-proxy', '/usr/share/doc/xmpp-onion-proxy', '/usr/lib/systemd/system/xmpp-onion-proxy.service', '/usr/share/man/man1/xmpp-onion-proxy.1.gz']) {
    t.notOk(existsSync(left), `${left} is gone`);
  }
  t.notMatch((await runCommand('dpkg-query', ['-W', '-f=${Status}', 'xmpp-onion-proxy'])).stdout, /installed|config-files/, 'dpkg knows nothing of it');
});
