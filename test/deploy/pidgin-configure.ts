// `pidgin configure` on libpurple accounts files: both doors, only XMPP accounts touched, the
// rest byte for byte, idempotent, a backup, no password printed, refused while Pidgin runs.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { DeployError } from '../../src/deploy/deploy-error.js';
import { parseDoorAddress } from '../../src/deploy/doors.js';
import { configurePidgin, formatPidginReport } from '../../src/deploy/pidgin-configure.js';
import { doorStatus } from '../../src/deploy/pidgin-doors.js';
import { listAccounts } from '../../src/deploy/purple-accounts.js';
import { clientsUsing, runningPurpleClients } from '../../src/deploy/purple-running.js';
import { parseXml, serializeXml } from '../../src/deploy/xml-tree.js';
import { requireBuild, runCli } from '../cli/built-cli.js';
import { exited, spawnTied } from '../helpers/prosody.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/purple/', import.meta.url));
const SAMPLE = readFileSync(path.join(FIXTURES, 'accounts.xml'), 'utf8');
const SOCKS = parseDoorAddress('socks', '127.0.0.1:9055', '--socks');
const CONNECT = parseDoorAddress('connect-server', '127.0.0.1:5222', '--listen');
const SECRETS = ['pa&ss<wörd', 'pa&amp;ss&lt;wörd', 'hunter2', 'proxy-secret', 'irc-secret'];
const NOW = new Date('2026-01-02T03:04:05Z');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'xop-pidgin-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
let dirs = 0;

/** A settings folder holding the sample accounts.xml, mode 0600 as Pidgin writes it. */
function purpleDir(content = SAMPLE): string {
  const dir = path.join(tmp, `purple-${++dirs}`);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'accounts.xml'), content, { mode: 0o600 });
  return dir;
}

function accountXml(xml: string, name: string): string {
  const account = listAccounts(parseXml(xml)).find((a) => a.name === name);
  if (!account) throw new Error(`no account ${name}`);
  return serializeXml({ before: [], root: account.element, after: [] });
}

for (const [door, expected] of [[SOCKS, 'accounts-socks-door.xml'], [CONNECT, 'accounts-connect-server-door.xml']] as const) {
  t.test(`the ${door.kind} door: exactly the expected file`, async (t) => {
    const dir = purpleDir();
    const report = configurePidgin({ purpleDir: dir, door, now: NOW });
    const written = readFileSync(path.join(dir, 'accounts.xml'), 'utf8');
    t.equal(written, readFileSync(path.join(FIXTURES, expected), 'utf8'), `matches test/fixtures/purple/${expected}`);
    t.ok(report.written);
    t.same(report.accounts.map((a) => a.name), ['alice@example.org/Home', 'bob@example.net/laptop', 'carol@example.com'], 'every XMPP account, in file order');
    t.equal(report.otherAccounts, 1);
    t.equal(accountXml(written, 'alice@irc.oftc.net'), accountXml(SAMPLE, 'alice@irc.oftc.net'), 'the IRC account, proxy and all, is untouched');
    for (const account of listAccounts(parseXml(written)).filter((a) => a.protocol === 'prpl-jabber')) {
      t.equal(doorStatus(account, [door]).door, door, `${account.name} is now set for the door`);
    }
    t.equal(statSync(path.join(dir, 'accounts.xml')).mode & 0o777, 0o600, 'still 0600: it holds passwords');
    const backups = readdirSync(dir).filter((f) => f.endsWith('.bak'));
    t.same(backups, ['accounts.xml.20260102T030405Z.bak']);
    t.equal(readFileSync(path.join(dir, backups[0]!), 'utf8'), SAMPLE, 'the backup is the previous file');
    t.equal(statSync(path.join(dir, backups[0]!)).mode & 0o777, 0o600, 'and as private');
    const printed = formatPidginReport(report);
    for (const secret of SECRETS) t.notOk(printed.includes(secret), 'no password printed');
    t.match(printed, /connection_security: opportunistic_tls → require_tls/);
  });
}

t.test('idempotent: a second run changes nothing and makes no backup', async (t) => {
  const dir = purpleDir();
  configurePidgin({ purpleDir: dir, door: SOCKS, now: NOW });
  const file = path.join(dir, 'accounts.xml');
  const before = { text: readFileSync(file, 'utf8'), mtime: statSync(file).mtimeMs, files: readdirSync(dir).sort() };
  const again = configurePidgin({ purpleDir: dir, door: SOCKS, now: new Date('2026-01-02T04:00:00Z') });
  t.notOk(again.written);
  t.ok(again.accounts.every((a) => a.changes.length === 0));
  t.same({ text: readFileSync(file, 'utf8'), mtime: statSync(file).mtimeMs, files: readdirSync(dir).sort() }, before);
  t.match(formatPidginReport(again), /already set, nothing to change[\s\S]*Nothing to change\.\n$/);
});

t.test('switching doors, then back', async (t) => {
  const dir = purpleDir();
  const xmppAccounts = (): ReturnType<typeof listAccounts> => listAccounts(parseXml(readFileSync(path.join(dir, 'accounts.xml'), 'utf8'))).filter((a) => a.protocol === 'prpl-jabber');
  configurePidgin({ purpleDir: dir, door: SOCKS, now: NOW });
  const toConnect = configurePidgin({ purpleDir: dir, door: CONNECT, now: new Date('2026-01-02T03:05:00Z') });
  const alice = toConnect.accounts.find((a) => a.name.startsWith('alice'))!;
  t.same(alice.changes.map((c) => c.setting), ['connect_server', 'proxy'], 'only what differs between the doors');
  t.ok(xmppAccounts().every((a) => doorStatus(a, [SOCKS, CONNECT]).door === CONNECT), 'every account on the connect-server door');
  configurePidgin({ purpleDir: dir, door: SOCKS, now: new Date('2026-01-02T03:06:00Z') });
  t.ok(xmppAccounts().every((a) => doorStatus(a, [SOCKS, CONNECT]).door === SOCKS), 'and back on the SOCKS door');
  t.notMatch(readFileSync(path.join(dir, 'accounts.xml'), 'utf8'), /connect_server/, 'no connect server left');
  t.equal(readdirSync(dir).filter((f) => f.endsWith('.bak')).length, 3, 'a backup per change');
});

t.test('--account: one account only, by bare JID (any case) or full name; an unknown one is an error', async (t) => {
  const dir = purpleDir();
  const report = configurePidgin({ purpleDir: dir, door: SOCKS, account: 'Bob@Example.NET', now: NOW });
  t.same(report.accounts.map((a) => a.name), ['bob@example.net/laptop']);
  const written = readFileSync(path.join(dir, 'accounts.xml'), 'utf8');
  t.equal(accountXml(written, 'alice@example.org/Home'), accountXml(SAMPLE, 'alice@example.org/Home'), 'alice untouched');
  t.throws(() => configurePidgin({ purpleDir: dir, door: SOCKS, account: 'dave@example.org' }), { code: 'XOP_ERR_NO_SUCH_ACCOUNT', message: /alice@example\.org\/Home, bob@example\.net\/laptop, carol@example\.com/ });
});

t.test('dry run: reports, writes nothing', async (t) => {
  const dir = purpleDir();
  const report = configurePidgin({ purpleDir: dir, door: CONNECT, dryRun: true });
  t.notOk(report.written);
  t.ok(report.accounts.some((a) => a.changes.length > 0));
  t.equal(readFileSync(path.join(dir, 'accounts.xml'), 'utf8'), SAMPLE);
  t.same(readdirSync(dir), ['accounts.xml']);
  t.match(formatPidginReport(report, true), /Dry run: nothing was written\./);
});

t.test('files it will not touch', async (t) => {
  t.throws(() => configurePidgin({ purpleDir: path.join(tmp, 'nowhere'), door: SOCKS }), { code: 'XOP_ERR_NO_ACCOUNTS', message: /add your XMPP account in Pidgin first/ });
  const broken = purpleDir(SAMPLE.slice(0, 500));
  t.throws(() => configurePidgin({ purpleDir: broken, door: SOCKS }), { code: 'XOP_ERR_ACCOUNTS_FILE', message: /not well-formed XML/ });
  t.equal(readFileSync(path.join(broken, 'accounts.xml'), 'utf8'), SAMPLE.slice(0, 500), 'left as it was');
  const doctype = purpleDir(`<!DOCTYPE account [<!ENTITY e "x">]>${SAMPLE.slice(SAMPLE.indexOf('<account'))}`);
  t.throws(() => configurePidgin({ purpleDir: doctype, door: SOCKS }), { code: 'XOP_ERR_ACCOUNTS_FILE', message: /DOCTYPE/ });
  const ircOnly = purpleDir("<?xml version='1.0' encoding='UTF-8' ?>\n<account version='1.0'><account><protocol>prpl-irc</protocol><name>a@irc</name></account></account>\n");
  t.throws(() => configurePidgin({ purpleDir: ircOnly, door: SOCKS }), { code: 'XOP_ERR_NO_ACCOUNTS', message: /no XMPP account/ });
  const wrongRoot = purpleDir('<prefs/>');
  try {
    configurePidgin({ purpleDir: wrongRoot, door: SOCKS });
    t.fail('a file that is not an accounts file is refused');
  } catch (error) {
    t.ok(error instanceof DeployError, 'refused with a DeployError (the command prints its message, exits 1)');
    t.match((error as DeployError).message, /not libpurple's <account version='1\.0'>/);
  }
});

/** A stand-in for a running Pidgin or finch: a script of that name (/proc shows it as its comm), with these arguments. */
async function fakeClient(t: Test, program: 'pidgin' | 'finch', args: string[]): Promise<number> {
  const bin = path.join(tmp, `bin-${++dirs}`);
  mkdirSync(bin);
  const script = path.join(bin, program);
  writeFileSync(script, '#!/bin/sh\necho started\nread line\n');
  chmodSync(script, 0o755);
  const child = spawnTied(script, args, { stdio: ['pipe', 'pipe', 'ignore'] });
  t.teardown(async () => {
    child.stdin?.end();
    await exited(child);
  });
  await new Promise<void>((resolve) => child.stdout?.once('data', () => resolve()));
  return child.pid!;
}

t.test('refused while Pidgin or finch uses the folder; allowed while they use another one', async (t) => {
  const dir = purpleDir();
  const other = purpleDir();
  const finch = await fakeClient(t, 'finch', ['-c', dir]);
  t.same(clientsUsing(dir, runningPurpleClients()).map((c) => c.pid), [finch], '/proc shows finch on this folder');
  t.throws(() => configurePidgin({ purpleDir: dir, door: SOCKS }), { code: 'XOP_ERR_CLIENT_RUNNING', message: new RegExp(`finch \\(pid ${finch}\\) is running with these settings.*quit it`) });
  t.equal(readFileSync(path.join(dir, 'accounts.xml'), 'utf8'), SAMPLE, 'nothing written');
  t.ok(configurePidgin({ purpleDir: other, door: SOCKS }).written, 'another folder is fine');
  t.ok(configurePidgin({ purpleDir: dir, door: SOCKS, dryRun: true }).accounts.length > 0, 'a dry run is fine');

  const relative = purpleDir();
  const pidgin = await fakeClient(t, 'pidgin', [`--config=${path.relative(process.cwd(), relative)}`]);
  t.same(clientsUsing(relative, runningPurpleClients()).map((c) => c.pid), [pidgin], '--config=DIR, relative to its folder');
  const viaLink = path.join(tmp, 'link-to-purple');
  symlinkSync(relative, viaLink);
  t.throws(() => configurePidgin({ purpleDir: viaLink, door: SOCKS }), { code: 'XOP_ERR_CLIENT_RUNNING' }, 'the same folder by another path is the same folder');
});

t.test('the command line', async (t) => {
  if (!requireBuild(t)) return;
  const dir = purpleDir();
  const first = await runCli(['pidgin', 'configure', '--purple-dir', dir, '--door', 'connect-server', '--listen', '127.0.0.1:15222']);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stdout, /for the connect-server door 127\.0\.0\.1:15222/);
  t.match(first.stdout, /Accept it only if that domain is your server's/, 'says what the certificate prompt will be');
  t.match(readFileSync(path.join(dir, 'accounts.xml'), 'utf8'), /<setting name='port' type='int'>15222<\/setting>/);
  for (const secret of SECRETS) t.notOk(first.stdout.includes(secret) || first.stderr.includes(secret), 'no password printed');
  const second = await runCli(['pidgin', 'configure', '--purple-dir', dir, '--door', 'connect-server', '--listen', '127.0.0.1:15222']);
  t.equal(second.code, 0);
  t.match(second.stdout, /Nothing to change\./);

  const usage = await runCli(['pidgin', 'configure', '--purple-dir', dir, '--door', 'http']);
  t.equal(usage.code, 2, 'an unknown door is a usage error');
  const remote = await runCli(['pidgin', 'configure', '--purple-dir', dir, '--socks', '192.0.2.1:9055']);
  t.equal(remote.code, 2, 'a door that is not on loopback is a usage error');
  t.match(remote.stderr, /on loopback/);
  const missing = await runCli(['pidgin', 'configure', '--purple-dir', path.join(tmp, 'none')]);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /^xmpp-onion-proxy: .*does not exist: add your XMPP account in Pidgin first/);
});
