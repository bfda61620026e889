// `configure profanity`, the key-file editing under it, the other clients' printed settings, and
// doctor's client checks: every line not edited comes back byte for byte, a second run changes
// nothing, a backup is kept, no password is printed, and nothing is written while Profanity runs.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { DeployError } from '../../src/deploy/deploy-error.js';
import { checkPoezio, checkProfanity, checkUnreadClients } from '../../src/deploy/doctor/check-clients.js';
import { parseDoorAddress } from '../../src/deploy/doors.js';
import { KeyFile } from '../../src/deploy/key-file.js';
import { configureProfanity, formatProfanityReport } from '../../src/deploy/profanity-configure.js';
import { requireBuild, runCli } from '../cli/built-cli.js';

const CONNECT = parseDoorAddress('connect-server', '127.0.0.1:5222', '--listen');
const NOW = new Date('2026-01-02T03:04:05Z');
const PASSWORD = 'hunter2=with;odd#chars';
const SAMPLE = [
  '# written by Profanity',
  '[alice@example.org]',
  'enabled=true',
  'jid=alice@example.org',
  `password=${PASSWORD}`,
  'port=5223',
  'tls.policy=allow',
  '',
  '[work]',
  'enabled=true',
  'jid=bob@work.example',
  'server=xmpp.work.example',
  'otr.policy=manual',
  '',
].join('\n');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'xop-profanity-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
let dirs = 0;
function dataDir(content = SAMPLE): string {
  const dir = path.join(tmp, `data-${++dirs}`);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'accounts'), content, { mode: 0o600 });
  return dir;
}

t.test('the key file: unedited lines byte for byte; a key set where it is or at the end of its group', async (t) => {
  const file = new KeyFile(SAMPLE);
  t.same(file.groups(), ['alice@example.org', 'work']);
  t.equal(file.get('work', 'server'), 'xmpp.work.example');
  t.equal(file.toString(), SAMPLE, 'read and written back unchanged');
  file.set('alice@example.org', 'port', '5222');
  file.set('work', 'port', '5222');
  t.equal(file.toString(), SAMPLE.replace('port=5223', 'port=5222').replace('otr.policy=manual\n', 'otr.policy=manual\nport=5222\n'));
});

t.test('every account set for the connect-server door; a second run changes nothing; a backup kept', async (t) => {
  const dir = dataDir();
  const report = configureProfanity({ dataDir: dir, door: CONNECT, now: NOW, procRoot: path.join(tmp, 'no-proc') });
  t.ok(report.written);
  const written = readFileSync(path.join(dir, 'accounts'), 'utf8');
  t.equal(written, SAMPLE
    .replace('port=5223\ntls.policy=allow', 'port=5222\ntls.policy=force\nserver=127.0.0.1')
    .replace('server=xmpp.work.example', 'server=127.0.0.1')
    .replace('otr.policy=manual\n', 'otr.policy=manual\nport=5222\ntls.policy=force\n'));
  t.same(readdirSync(dir).sort(), ['accounts', 'accounts.20260102T030405Z.bak']);
  t.equal(readFileSync(path.join(dir, 'accounts.20260102T030405Z.bak'), 'utf8'), SAMPLE, 'the backup is the old file');
  const text = formatProfanityReport(report);
  t.match(text, /alice@example\.org:\n {4}server: \(not set\) → 127\.0\.0\.1\n {4}port: 5223 → 5222\n {4}tls\.policy: allow → force/);
  t.notOk(text.includes(PASSWORD), 'no password printed');
  const again = configureProfanity({ dataDir: dir, door: CONNECT, now: NOW, procRoot: path.join(tmp, 'no-proc') });
  t.notOk(again.written);
  t.match(formatProfanityReport(again), /Nothing to change\.\n$/);
  t.same(checkProfanity(dir, CONNECT).map((l) => l.status), ['ok', 'ok'], 'doctor agrees');
});

t.test('one account by name or JID; refusals in words', async (t) => {
  const dir = dataDir();
  const report = configureProfanity({ dataDir: dir, door: CONNECT, account: 'bob@work.example', dryRun: true });
  t.same(report.accounts.map((a) => a.name), ['work']);
  t.notOk(report.written, 'a dry run writes nothing');
  t.equal(readFileSync(path.join(dir, 'accounts'), 'utf8'), SAMPLE);
  t.throws(() => configureProfanity({ dataDir: dir, door: CONNECT, account: 'carol@x' }), { code: 'XOP_ERR_NO_SUCH_ACCOUNT', message: /its accounts: alice@example\.org, work/ });
  t.throws(() => configureProfanity({ dataDir: dir, door: parseDoorAddress('socks', '127.0.0.1:9055', '--socks') }), { code: 'XOP_ERR_DOOR', message: /no proxy setting/ });
  t.throws(() => configureProfanity({ dataDir: path.join(tmp, 'none'), door: CONNECT }), { code: 'XOP_ERR_NO_ACCOUNTS', message: /does not exist: add your account in Profanity first/ });
});

t.test('refused while Profanity runs (it writes its accounts when it quits); a zombie does not count', async (t) => {
  const dir = dataDir();
  const proc = path.join(tmp, `proc-${++dirs}`);
  for (const [pid, state] of [['4242', 'S'], ['4343', 'Z']] as const) {
    mkdirSync(path.join(proc, pid), { recursive: true });
    writeFileSync(path.join(proc, pid, 'comm'), 'profanity\n');
    writeFileSync(path.join(proc, pid, 'stat'), `${pid} (profanity) ${state} 1 2 3`);
  }
  const error = (() => {
    try {
      configureProfanity({ dataDir: dir, door: CONNECT, procRoot: proc });
    } catch (caught) {
      return caught;
    }
    return undefined;
  })();
  t.ok(error instanceof DeployError);
  t.match(error, { code: 'XOP_ERR_CLIENT_RUNNING', message: /Profanity \(pid 4242\) is running/ });
  t.equal(readFileSync(path.join(dir, 'accounts'), 'utf8'), SAMPLE, 'nothing written');
});

t.test('doctor: Profanity and Poezio checked, Gajim and Dino named with what to do', async (t) => {
  const profanity = checkProfanity(dataDir(), CONNECT);
  t.match(profanity, [
    { status: 'fail', text: /^Profanity alice@example\.org: not set for the connect-server door 127\.0\.0\.1:5222: server is \(not set\), not 127\.0\.0\.1; port is 5223, not 5222; tls\.policy is allow, not force$/, fix: /^xmpp-onion-proxy configure profanity --account alice@example\.org/ },
    { status: 'fail', text: /^Profanity work: / },
  ]);
  const poezio = path.join(tmp, `poezio-${++dirs}`);
  mkdirSync(poezio);
  writeFileSync(path.join(poezio, 'poezio.cfg'), '[Poezio]\njid = alice@example.org\ncustom_host = 127.0.0.1\ncustom_port = 5222\n');
  t.match(checkPoezio(poezio, CONNECT), [{ status: 'fail', text: /force_encryption is \(not set\), not true/, fix: /configure poezio/ }]);
  writeFileSync(path.join(poezio, 'poezio.cfg'), '[Poezio]\njid = alice@example.org\ncustom_host = 127.0.0.1\ncustom_port = 5222\nforce_encryption = true\n');
  t.match(checkPoezio(poezio, CONNECT), [{ status: 'ok' }]);
  t.same(checkPoezio(path.join(tmp, 'no-poezio'), CONNECT), [], 'no Poezio, no line');
  t.match(checkUnreadClients({ gajim: poezio, dino: poezio }), [
    { status: 'warn', text: /^Gajim found/, fix: 'xmpp-onion-proxy configure gajim (prints the settings)' },
    { status: 'warn', text: /^Dino found: .*SRV records through the system resolver, outside Tor/ },
  ]);
});

t.test('the command line: configure pidgin is pidgin configure; the printed settings name the doors', async (t) => {
  if (!requireBuild(t)) return;
  const help = await runCli(['configure', 'pidgin', '--help']);
  const old = await runCli(['pidgin', 'configure', '--help']);
  t.equal(help.stdout.replace('configure pidgin', 'X'), old.stdout.replace('pidgin configure', 'X'), 'the same options');
  const gajim = await runCli(['configure', 'gajim', '--socks', '127.0.0.1:9999']);
  t.equal(gajim.code, 0);
  t.match(gajim.stdout, /type SOCKS5, host 127\.0\.0\.1, port 9999/);
  const poezio = await runCli(['configure', 'poezio', '--listen', '127.0.0.1:5333']);
  t.match(poezio.stdout, /\n {4}custom_host = 127\.0\.0\.1\n {4}custom_port = 5333\n {4}force_encryption = true\n/);
  const dino = await runCli(['configure', 'dino']);
  t.match(dino.stdout, /a DNS lookup outside Tor that names your server/);
  const remote = await runCli(['configure', 'gajim', '--socks', '192.0.2.1:9055']);
  t.equal(remote.code, 2, 'a door off loopback is a usage error');
});
