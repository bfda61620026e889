// `tails setup` against a fake Tails layout (XOP_TAILS_PERSISTENCE): checks first, then every
// file it writes, and a second run that changes nothing.
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { checkAdditionalSoftware } from '../../src/deploy/tails-checks.js';
import { checkNodeVersion } from '../../src/deploy/node-version.js';
import { oneFileBuildFiles } from '../../src/deploy/daemon-files.js';
import { requireBuild, runCli } from '../cli/built-cli.js';
import { freePort } from '../helpers/ports.js';
import { exited, spawnTied, terminate } from '../helpers/prosody.js';
import { connect, readToClose } from '../helpers/xmpp-wire.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const ACCOUNTS = readFileSync(fileURLToPath(new URL('../fixtures/purple/accounts.xml', import.meta.url)), 'utf8');
const { version } = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };

const tmp = mkdtempSync(path.join(os.tmpdir(), 'xop-tails-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
let layouts = 0;

interface FakeTails {
  readonly root: string;
  run(args?: string[]): ReturnType<typeof runCli>;
}

/** An unlocked Persistent Storage with the features a user of this daemon turns on. */
function fakeTails(features: { dotfiles?: boolean; persistent?: boolean; pidgin?: boolean; packages?: string | null } = {}): FakeTails {
  const root = path.join(tmp, `TailsData_unlocked-${++layouts}`);
  mkdirSync(root);
  if (features.persistent ?? true) mkdirSync(path.join(root, 'Persistent'));
  if (features.dotfiles ?? true) mkdirSync(path.join(root, 'dotfiles'));
  if (features.pidgin ?? true) {
    mkdirSync(path.join(root, 'pidgin'));
    writeFileSync(path.join(root, 'pidgin', 'accounts.xml'), ACCOUNTS, { mode: 0o600 });
  }
  const packages = features.packages === undefined ? 'nodejs\n' : features.packages;
  if (packages !== null) writeFileSync(path.join(root, 'live-additional-software.conf'), packages);
  return { root, run: (args = []) => runCli(['tails', 'setup', ...args], { XOP_TAILS_PERSISTENCE: root }) };
}

/** Every file under dir: content hash, mode and modification time. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isDirectory()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const stat = statSync(file);
    out[path.relative(dir, file)] = `${createHash('sha256').update(readFileSync(file)).digest('hex')} ${(stat.mode & 0o777).toString(8)} ${stat.mtimeMs}`;
  }
  return out;
}

if (!requireBuild(t)) process.exit(1);

t.test('a first run writes exactly these files; a second run changes nothing', async (t) => {
  const tails = fakeTails();
  const before = snapshot(tails.root);
  const first = await tails.run();
  t.equal(first.code, 0, `exit 0\n${first.stdout}${first.stderr}`);
  for (const line of ['✓ Persistent Storage is unlocked', '✓ Node.js', '✓ the Dotfiles feature is on', '✓ the Persistent Folder feature is on', '✓ nodejs is in your Additional Software', '✓ copied the daemon to', `✓ the copy runs: version ${version}`, '✓ wrote', '✓ wrote the autostart entry', '✓ Pidgin: set alice@example.org/Home, bob@example.net/laptop, carol@example.com for the SOCKS door 127.0.0.1:9055']) {
    t.match(first.stdout, line);
  }
  t.match(first.stdout, /Done: the daemon starts at your next login\. To start it now, run:\n {2}\/usr\/bin\/node \S+\/Persistent\/xmpp-onion-proxy\/app\/dist\/cli\/xmpp-onion-proxy\.mjs --config \S+\/Persistent\/xmpp-onion-proxy\/config\.json\n$/);

  const after = snapshot(tails.root);
  const added = Object.keys(after).filter((f) => !(f in before)).sort();
  const changed = Object.keys(before).filter((f) => after[f] !== before[f]).sort();
  const app = 'Persistent/xmpp-onion-proxy/app/';
  t.same(added.filter((f) => !f.startsWith(app)), [
    'Persistent/xmpp-onion-proxy/config.json',
    'dotfiles/.config/autostart/xmpp-onion-proxy.desktop',
    `pidgin/${readdirSync(path.join(tails.root, 'pidgin')).find((f) => f.endsWith('.bak'))}`,
  ].sort(), 'outside the app folder: the configuration, the autostart entry and the Pidgin backup');
  t.same(changed, ['pidgin/accounts.xml'], 'and accounts.xml was changed; nothing else');

  // The app folder: the one-file build, no node_modules.
  const appFiles = added.filter((f) => f.startsWith(app)).map((f) => f.slice(app.length)).sort();
  t.same(appFiles, oneFileBuildFiles(REPO), 'exactly the one-file build: package.json, the bundled code, the map, the schemas');
  t.ok(appFiles.includes('dist/cli/xmpp-onion-proxy.mjs') && appFiles.includes('data/onions.json'));
  t.notOk(appFiles.some((f) => f.startsWith('node_modules/') || f.startsWith('src/') || f.startsWith('test/')), 'no node_modules, sources or tests');

  t.same(JSON.parse(readFileSync(path.join(tails.root, 'Persistent/xmpp-onion-proxy/config.json'), 'utf8')), { listen: '127.0.0.1:5222', socks: '127.0.0.1:9055', tor: '127.0.0.1:9050' },
    "Tails' Tor; both doors on 127.0.0.1 (Tails closes the IPv6 loopback)");
  const entry = readFileSync(path.join(tails.root, 'dotfiles/.config/autostart/xmpp-onion-proxy.desktop'), 'utf8');
  t.equal(entry, [
    '[Desktop Entry]',
    'Type=Application',
    'Name=xmpp-onion-proxy',
    'Comment=XMPP through Tor, encryption required: for Pidgin',
    `Exec=/usr/bin/node ${tails.root}/Persistent/xmpp-onion-proxy/app/dist/cli/xmpp-onion-proxy.mjs --config ${tails.root}/Persistent/xmpp-onion-proxy/config.json`,
    'Terminal=false',
    'NoDisplay=true',
    'X-GNOME-Autostart-enabled=true',
    '',
  ].join('\n'));
  const accounts = readFileSync(path.join(tails.root, 'pidgin/accounts.xml'), 'utf8');
  t.equal(accounts, readFileSync(fileURLToPath(new URL('../fixtures/purple/accounts-socks-door.xml', import.meta.url)), 'utf8'), 'Pidgin set for the SOCKS door');

  const second = await tails.run();
  t.equal(second.code, 0);
  t.match(second.stdout, /· the daemon in .* is up to date/);
  t.match(second.stdout, /· kept your .*config\.json/);
  t.match(second.stdout, /· the autostart entry .* is up to date/);
  t.match(second.stdout, /· Pidgin: .* already set for the SOCKS door/);
  t.match(second.stdout, /Nothing changed: already set up\.\n$/);
  t.same(snapshot(tails.root), after, 'every file as it was: content, mode, time');
});

t.test('the autostart command starts the copied daemon with its configuration', async (t) => {
  const tails = fakeTails({ pidgin: false });
  t.equal((await tails.run()).code, 0);
  const exec = /^Exec=(.*)$/m.exec(readFileSync(path.join(tails.root, 'dotfiles/.config/autostart/xmpp-onion-proxy.desktop'), 'utf8'))![1]!.split(' ');
  t.equal(exec[0], '/usr/bin/node');
  // The doors and Tor of the configuration are fixed ports; here they are moved to free ones.
  const tor = await freePort();
  const child = spawnTied(process.execPath, [...exec.slice(1), '--listen', '127.0.0.1:0', '--socks', '127.0.0.1:0', '--tor', `127.0.0.1:${tor}`], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, XMPP_ONION_PROXY_SYSTEM_MAP: '', XMPP_ONION_PROXY_USER_MAP: '' },
  });
  t.teardown(() => terminate(child));
  const port = await startedPort(child);
  const client = await connect(port);
  const answer = readToClose(client);
  client.write("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
  t.match((await answer).toString(), /did not say which server it wants/, 'the copy serves');
  child.kill('SIGTERM');
  t.equal((await exited(child)).code, 0);
});

async function startedPort(child: ReturnType<typeof spawnTied>): Promise<number> {
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const line = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; port: number }).find((l) => l.msg.startsWith('listening on'));
    if (line) return line.port;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the copied daemon did not start:\n${out}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function refusedWithoutWriting(t: Test, tails: FakeTails, expected: RegExp, fix: RegExp): Promise<void> {
  const before = snapshot(tails.root);
  const run = await tails.run();
  t.equal(run.code, 1);
  t.match(run.stdout, expected);
  t.match(run.stdout, fix);
  t.match(run.stdout, /Nothing was changed\. Fix what is marked ✗, then run this again\.\n$/);
  t.same(snapshot(tails.root), before, 'nothing written');
}

t.test('checks first, with the fix, and writes nothing while one fails', async (t) => {
  await refusedWithoutWriting(t, fakeTails({ dotfiles: false }), /✗ the Dotfiles feature is off/, /fix: turn on Dotfiles in Applications › Tails › Persistent Storage/);
  await refusedWithoutWriting(t, fakeTails({ persistent: false }), /✗ the Persistent Folder feature is off/, /fix: turn on Persistent Folder/);
  await refusedWithoutWriting(t, fakeTails({ packages: 'keepassxc\n# nodejs\n' }), /✗ nodejs is not in your Additional Software/, /sudo apt install nodejs.*Install Every Time/);
  await refusedWithoutWriting(t, fakeTails({ packages: null }), /✗ Additional Software has no packages/, /sudo apt install nodejs/);
  const missing = await runCli(['tails', 'setup'], { XOP_TAILS_PERSISTENCE: path.join(tmp, 'not-unlocked') });
  t.equal(missing.code, 1);
  t.match(missing.stdout, /✗ no unlocked Persistent Storage at .*not-unlocked\n {4}fix: restart Tails and unlock your Persistent Storage in the Welcome Screen/);
});

t.test('Pidgin: feature off or no account yet is a warning; Pidgin running is a ✗ and a second run finishes', async (t) => {
  const off = fakeTails({ pidgin: false });
  const offRun = await off.run();
  t.equal(offRun.code, 0);
  t.match(offRun.stdout, /! Pidgin: the Pidgin Internet Messenger feature of Persistent Storage is off/);

  const empty = fakeTails({ pidgin: false });
  mkdirSync(path.join(empty.root, 'pidgin'));
  const emptyRun = await empty.run(['--door', 'connect-server']);
  t.equal(emptyRun.code, 0);
  t.match(emptyRun.stdout, /! Pidgin: no accounts yet in .*then run this setup again \(or `node \S+\/Persistent\/xmpp-onion-proxy\/app\/dist\/cli\/xmpp-onion-proxy\.mjs configure pidgin --door connect-server`\)/);

  const busy = fakeTails();
  const bin = path.join(tmp, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(path.join(bin, 'pidgin'), '#!/bin/sh\necho started\nread line\n');
  chmodSync(path.join(bin, 'pidgin'), 0o755);
  const pidgin = spawnTied(path.join(bin, 'pidgin'), ['-c', path.join(busy.root, 'pidgin')], { stdio: ['pipe', 'pipe', 'ignore'] });
  t.teardown(() => terminate(pidgin));
  await new Promise<void>((resolve) => pidgin.stdout?.once('data', () => resolve()));
  const busyRun = await busy.run();
  t.equal(busyRun.code, 1);
  t.match(busyRun.stdout, /✗ Pidgin: Pidgin \(pid \d+\) is running with these settings/);
  t.match(busyRun.stdout, /Fix what is marked ✗, then run this again \(what is done stays done\)\./);
  t.equal(readFileSync(path.join(busy.root, 'pidgin/accounts.xml'), 'utf8'), ACCOUNTS, 'accounts.xml untouched');
  pidgin.stdin?.end();
  await exited(pidgin);
  const again = await busy.run();
  t.equal(again.code, 0);
  t.match(again.stdout, /✓ Pidgin: set/);
  t.match(again.stdout, /· the daemon in .* is up to date/, 'the rest was done the first time');
});

t.test('checks, one by one', async (t) => {
  t.match(checkNodeVersion('20.19.2'), { status: 'ok' }, 'Tails 7');
  t.match(checkNodeVersion('18.19.0'), { status: 'fail', fix: /Tails 6 ship\) is end of life and not supported: on Tails, upgrade to Tails 7/ }, 'Tails 6');
  const conf = path.join(tmp, 'additional.conf');
  for (const [text, status] of [['nodejs\n', 'ok'], ['  nodejs  \n', 'ok'], ['nodejs=20.19.2+dfsg-1\n', 'ok'], ['libnode115\nnodejs-doc\n', 'fail'], ['#nodejs\n', 'fail']] as const) {
    writeFileSync(conf, text);
    t.equal(checkAdditionalSoftware(conf).status, status, JSON.stringify(text));
  }
  if (process.getuid?.() !== 0) {
    copyFileSync(conf, `${conf}.locked`);
    chmodSync(`${conf}.locked`, 0);
    t.equal(checkAdditionalSoftware(`${conf}.locked`).status, 'warn', 'unreadable: a warning, not a failure');
  }
});
