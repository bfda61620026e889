// scripts/install and scripts/uninstall under a --root folder: the code with production
// dependencies only, the command, the units, a default configuration; the installed command
// runs, serves and stops; uninstall removes it all (the configuration only with --purge).
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { freePort } from '../helpers/ports.js';
import { exited, spawnTied, terminate } from '../helpers/prosody.js';
import { runCommand } from '../helpers/run-command.js';
import { connect, readToClose } from '../helpers/xmpp-wire.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const INSTALL = path.join(REPO, 'scripts', 'install');
const UNINSTALL = path.join(REPO, 'scripts', 'uninstall');
const { version, dependencies, devDependencies } = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
  version: string; dependencies: Record<string, string>; devDependencies: Record<string, string>;
};

const root = mkdtempSync(path.join(os.tmpdir(), 'xop-install-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const prefix = path.join(root, 'opt/xmpp-onion-proxy');
const command = path.join(root, 'usr/local/bin/xmpp-onion-proxy');
const unitDir = path.join(root, 'usr/local/lib/systemd/system');
const config = path.join(root, 'etc/xmpp-onion-proxy/config.json');
const UNITS = ['xmpp-onion-proxy.service', 'xmpp-onion-proxy.socket', 'xmpp-onion-proxy-socks.socket'];

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => !e.isDirectory()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

t.test('install under --root', async (t) => {
  const result = await runCommand(INSTALL, ['--root', root], { timeoutMs: 300_000 });
  t.equal(result.code, 0, `exit 0\n${result.stdout}${result.stderr}`);
  t.match(result.stdout, new RegExp(`installed xmpp-onion-proxy ${version.replace(/\./g, '\\.')} in ${root}/opt/xmpp-onion-proxy`));

  for (const file of ['package.json', 'dist/cli/main.js', 'data/onions.json', 'bin/xmpp-onion-proxy']) t.ok(existsSync(path.join(prefix, file)), `${file} installed`);
  for (const name of Object.keys(dependencies)) t.ok(existsSync(path.join(prefix, 'node_modules', name, 'package.json')), `dependency ${name} installed`);
  for (const name of Object.keys(devDependencies)) t.notOk(existsSync(path.join(prefix, 'node_modules', name)), `development dependency ${name} left out`);
  t.notOk(existsSync(path.join(prefix, 'src')) || existsSync(path.join(prefix, 'test')), 'no sources, no tests');
  const modes = filesUnder(prefix).map((f) => [f, statSync(path.join(prefix, f)).mode & 0o777] as const);
  t.same(modes.filter(([, mode]) => (mode & 0o044) !== 0o044 || (mode & 0o022) !== 0), [], 'every file readable by the service\'s dynamic user, writable by root only');

  t.ok(lstatSync(command).isSymbolicLink(), 'the command is a link');
  t.equal(readlinkSync(command), '../../../opt/xmpp-onion-proxy/bin/xmpp-onion-proxy', 'relative, so it works on the real system and under --root');
  t.equal(statSync(path.join(prefix, 'bin/xmpp-onion-proxy')).mode & 0o777, 0o755);
  t.match(readFileSync(path.join(prefix, 'bin/xmpp-onion-proxy'), 'utf8'), /^exec \/\S+ "\$here\/\.\.\/dist\/cli\/main\.js" "\$@"$/m, 'runs the daemon on the Node.js found at install time');

  for (const unit of UNITS) t.equal(readFileSync(path.join(unitDir, unit), 'utf8'), readFileSync(path.join(REPO, 'systemd', unit), 'utf8'), `${unit} installed as shipped`);
  t.notOk(existsSync(path.join(unitDir, 'xmpp-onion-proxy.service.d')), 'no network-less drop-in unless asked for');
  t.same(JSON.parse(readFileSync(config, 'utf8')), { listen: '127.0.0.1:5222', socks: '127.0.0.1:9055', tor: '127.0.0.1:9050' }, 'default configuration: both doors, Debian\'s Tor');
  t.match(readFileSync(path.join(unitDir, 'xmpp-onion-proxy.service'), 'utf8'), /^ExecStart=\/usr\/local\/bin\/xmpp-onion-proxy --config \/etc\/xmpp-onion-proxy\/config\.json$/m, 'the service runs the command with that configuration');
});

t.test('the installed command: --version, serves both doors with the installed configuration, stops on SIGTERM', async (t) => {
  const versionRun = await runCommand(command, ['--version']);
  t.equal(versionRun.code, 0);
  t.equal(versionRun.stdout.trim(), version);

  const closedTor = await freePort();
  const child = spawnTied(command, ['--config', config, '--listen', '127.0.0.1:0', '--socks', '127.0.0.1:0', '--tor', `127.0.0.1:${closedTor}`], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XMPP_ONION_PROXY_SYSTEM_MAP: '', XMPP_ONION_PROXY_USER_MAP: '' },
  });
  t.teardown(() => terminate(child));
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 20_000;
  let started: { port: number; socksPort: number } | undefined;
  while (!started) {
    started = output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; port: number; socksPort: number }).find((l) => l.msg.startsWith('listening on'));
    if (!started && (child.exitCode !== null || Date.now() > deadline)) throw new Error(`the installed daemon did not start:\n${output}`);
    if (!started) await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const client = await connect(started.port);
  const answer = readToClose(client);
  client.write("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
  t.match((await answer).toString(), /did not say which server it wants/, 'the connect-server door answers');
  t.ok(started.socksPort > 0, 'the SOCKS door is open');
  child.kill('SIGTERM');
  t.equal((await exited(child)).code, 0, 'exit 0 on SIGTERM');
});

t.test('install again with --isolated: replaced in place, configuration kept, drop-in added', async (t) => {
  writeFileSync(config, '{"listen":"127.0.0.1:5222","tor":"127.0.0.1:9050","onionOnly":true}\n');
  const result = await runCommand(INSTALL, ['--root', root, '--isolated'], { timeoutMs: 300_000 });
  t.equal(result.code, 0, result.stderr);
  t.match(result.stdout, `kept ${config}`);
  t.match(readFileSync(config, 'utf8'), /onionOnly/, 'the user\'s configuration is untouched');
  t.equal(readFileSync(path.join(unitDir, 'xmpp-onion-proxy.service.d/isolated.conf'), 'utf8'), readFileSync(path.join(REPO, 'systemd/xmpp-onion-proxy-isolated.conf'), 'utf8'));
  t.notOk(readdirSync(path.dirname(prefix)).some((n) => n.includes('.new.')), 'no staging folder left behind');
  const analysed = await runCommand('systemd-analyze', ['security', '--offline=true', `--root=${root}`, 'xmpp-onion-proxy.service']);
  t.match(analysed.stdout, /Overall exposure level for xmpp-onion-proxy\.service: 0\.\d/, 'the installed network-less service scores below 1');
});

t.test('refuses a prefix it did not make, and a --prefix of / ', async (t) => {
  const foreign = path.join(root, 'srv/other');
  mkdirSync(foreign, { recursive: true });
  writeFileSync(path.join(foreign, 'precious'), 'x');
  const result = await runCommand(INSTALL, ['--root', root, '--prefix', '/srv/other']);
  t.equal(result.code, 1);
  t.match(result.stderr, /exists and was not made by this script/);
  t.ok(existsSync(path.join(foreign, 'precious')));
  const slash = await runCommand(INSTALL, ['--root', root, '--prefix', '/']);
  t.equal(slash.code, 1);
  const uninstall = await runCommand(UNINSTALL, ['--root', root, '--prefix', '/srv/other']);
  t.equal(uninstall.code, 1, 'uninstall will not remove it either');
  t.ok(existsSync(path.join(foreign, 'precious')));
  rmSync(path.join(root, 'srv'), { recursive: true });
});

t.test('uninstall keeps the configuration; --purge removes it; nothing else is left', async (t) => {
  const first = await runCommand(UNINSTALL, ['--root', root]);
  t.equal(first.code, 0, first.stderr);
  t.notOk(existsSync(prefix), 'code removed');
  t.notOk(existsSync(command) || lstatSyncOrUndefined(command), 'command removed');
  for (const unit of UNITS) t.notOk(existsSync(path.join(unitDir, unit)), `${unit} removed`);
  t.notOk(existsSync(path.join(unitDir, 'xmpp-onion-proxy.service.d')), 'drop-in removed');
  t.ok(existsSync(config), 'configuration kept');
  t.match(first.stdout, /kept .*--purge removes it/);
  const purge = await runCommand(UNINSTALL, ['--root', root, '--purge']);
  t.equal(purge.code, 0, purge.stderr);
  t.same(filesUnder(root), [], 'no file left under the root');
});

function lstatSyncOrUndefined(file: string): boolean {
  return lstatSync(file, { throwIfNoEntry: false }) !== undefined;
}
