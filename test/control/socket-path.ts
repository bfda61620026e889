import { spawn } from 'node:child_process';
import { chmodSync, chownSync, lchownSync, linkSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t from 'tap';
import type { SnapshotMessage } from '../../src/control/protocol.js';
import { clientControlPaths, ControlPathError, defaultControlPath, prepareControlPath } from '../../src/control/socket-path.js';
import { requireBuild } from '../cli/built-cli.js';
import { startDaemonProcess } from '../helpers/daemon-process.js';
import { CHILD_ENV, CLI, controlDir, runCli } from './fixture.js';

if (!requireBuild(t)) process.exit(1);

const NOBODY = 65534;
const root = process.geteuid?.() === 0;

t.test('default paths: systemd RuntimeDirectory=, then XDG_RUNTIME_DIR, else none', async (t) => {
  t.equal(defaultControlPath({ RUNTIME_DIRECTORY: '/run/xmpp-onion-proxy', XDG_RUNTIME_DIR: '/run/user/1000' }), '/run/xmpp-onion-proxy/control.sock');
  t.equal(defaultControlPath({ RUNTIME_DIRECTORY: '/run/a:/run/b' }), '/run/a/control.sock', 'the first of several runtime folders');
  t.equal(defaultControlPath({ XDG_RUNTIME_DIR: '/run/user/1000' }), '/run/user/1000/xmpp-onion-proxy/control.sock');
  t.equal(defaultControlPath({ XDG_RUNTIME_DIR: 'relative' }), undefined, 'a relative XDG_RUNTIME_DIR is ignored (the spec says absolute)');
  t.equal(defaultControlPath({}), undefined, 'no shared /tmp fallback');
  t.same(clientControlPaths({ XDG_RUNTIME_DIR: '/run/user/1000' }), ['/run/user/1000/xmpp-onion-proxy/control.sock', '/run/xmpp-onion-proxy/control.sock']);
  t.same(clientControlPaths({}), ['/run/xmpp-onion-proxy/control.sock']);
});

t.test('prepareControlPath: creates a 0700 folder, refuses what is not ours or not private', async (t) => {
  const { dir } = controlDir(t);
  const uid = process.geteuid!();
  const fresh = path.join(dir, 'new', 'deeper', 'control.sock');
  t.equal(await prepareControlPath(fresh, uid), 'ready');
  t.equal(statSync(path.dirname(fresh)).mode & 0o777, 0o700, 'missing folders made 0700');

  const wide = path.join(dir, 'wide');
  mkdirSync(wide, { mode: 0o700 });
  chmodSync(wide, 0o755);
  await t.rejects(prepareControlPath(path.join(wide, 'control.sock'), uid), new ControlPathError(`control socket folder ${wide} has permissions 0755; it must be 0700 (only you): chmod 700 ${wide} (under systemd: RuntimeDirectoryMode=0700)`));
  chmodSync(wide, 0o770);
  await t.rejects(prepareControlPath(path.join(wide, 'control.sock'), uid), { code: 'XOP_ERR_CONTROL_PATH', message: /permissions 0770/ }, 'group permission too');

  const other = path.join(dir, 'other');
  mkdirSync(other, { mode: 0o700 });
  await t.rejects(prepareControlPath(path.join(other, 'control.sock'), uid + 1), { message: `control socket folder ${other} is owned by uid ${uid}, not by this user (uid ${uid + 1}): someone else could replace the socket; choose another --control path` });

  const link = path.join(dir, 'link');
  symlinkSync(other, link);
  await t.rejects(prepareControlPath(path.join(link, 'control.sock'), uid), { message: /is a symbolic link/ });

  const file = path.join(other, 'control.sock');
  writeFileSync(file, 'not a socket');
  await t.rejects(prepareControlPath(file, uid), { message: `control socket ${file} exists and is not a socket; remove it or choose another --control path` });

  await t.rejects(prepareControlPath('relative/control.sock', uid), { message: /expected an absolute path/ });
});

t.test('prepareControlPath: a stale socket is replaced, a live one is left alone', async (t) => {
  const { dir, socket } = controlDir(t);
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.equal(await prepareControlPath(socket), 'in-use', 'something answers: in use');
  // A socket file nobody listens on any more, as a killed daemon leaves it: closing a server
  // removes its name, so a second name (a hard link) is what stays behind.
  const gone = net.createServer();
  const stale = path.join(dir, 'stale.sock');
  await new Promise<void>((resolve) => gone.listen(stale, resolve));
  const left = path.join(dir, 'left.sock');
  linkSync(stale, left);
  await new Promise<void>((resolve) => gone.close(() => resolve()));
  t.equal(await prepareControlPath(left), 'ready', 'nothing answers: stale');
  t.notOk(statSync(left, { throwIfNoEntry: false }), 'and removed');
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Runs the daemon expecting it to refuse to start; resolves with its exit code and stderr. */
function refusedStart(args: readonly string[]): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, [CLI, '--listen', '127.0.0.1:0', '--tor', '127.0.0.1:1', ...args], { env: CHILD_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stderr, stdout })));
}

t.test('the real daemon refuses to start on a folder owned by another user, or with wide permissions', { skip: root ? false : 'needs root to chown' }, async (t) => {
  const { dir } = controlDir(t);
  const theirs = path.join(dir, 'theirs');
  mkdirSync(theirs, { mode: 0o700 });
  chownSync(theirs, NOBODY, NOBODY);
  const owned = await refusedStart(['--control', path.join(theirs, 'control.sock')]);
  t.equal(owned.code, 1, 'exit 1');
  t.equal(owned.stderr, `xmpp-onion-proxy: control socket folder ${theirs} is owned by uid ${NOBODY}, not by this user (uid 0): someone else could replace the socket; choose another --control path\n`);
  t.notMatch(owned.stdout, /listening on/, 'no door was opened');

  const wide = path.join(dir, 'wide');
  mkdirSync(wide, { mode: 0o700 });
  chmodSync(wide, 0o711);
  const loose = await refusedStart(['--control', path.join(wide, 'control.sock')]);
  t.equal(loose.code, 1, 'exit 1');
  t.match(loose.stderr, `control socket folder ${wide} has permissions 0711; it must be 0700 (only you): chmod 700 ${wide}`);

  // A socket left in our own folder by another user.
  const mine = path.join(dir, 'mine');
  mkdirSync(mine, { mode: 0o700 });
  const planted = path.join(mine, 'control.sock');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(planted, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  lchownSync(planted, NOBODY, NOBODY);
  const foreign = await refusedStart(['--control', planted]);
  t.equal(foreign.code, 1, 'exit 1');
  t.equal(foreign.stderr, `xmpp-onion-proxy: control socket ${planted} is owned by uid ${NOBODY}, not by this user (uid 0); remove it or choose another --control path\n`);

  const tooLong = await refusedStart(['--control', path.join(dir, 'x'.repeat(120), 'control.sock')]);
  t.equal(tooLong.code, 2, 'a path too long for a Unix socket is a usage error: exit 2');
  t.match(tooLong.stderr, /longer than 107 bytes/);
});

t.test('the real daemon makes its socket 0600 in a 0700 folder, removes it on stop; a second daemon leaves it alone', async (t) => {
  const { dir } = controlDir(t);
  const socket = path.join(dir, 'made', 'control.sock');
  const first = await startDaemonProcess(['--tor', '127.0.0.1:1', '--control', socket], CHILD_ENV);
  t.teardown(() => first.stop());
  t.equal(statSync(path.dirname(socket)).mode & 0o777, 0o700, 'folder 0700');
  const stats = statSync(socket);
  t.ok(stats.isSocket(), 'a socket');
  t.equal(stats.mode & 0o777, 0o600, 'socket 0600');
  t.equal(first.logs().find((l) => typeof l.msg === 'string' && l.msg.startsWith('listening on'))?.control, socket, 'the ready line names it');

  const second = await startDaemonProcess(['--tor', '127.0.0.1:1', '--control', socket], CHILD_ENV);
  t.teardown(() => second.stop());
  t.match(second.logs().find((l) => l.level === 40 && typeof l.msg === 'string' && l.msg.startsWith('another daemon answers')), { control: socket }, 'the second one warns and runs without');
  const status = JSON.parse((await runCli(['status', '--json', '--control', socket])).stdout) as SnapshotMessage;
  t.equal(status.daemon.pid, first.child.pid, 'the socket still belongs to the first');
  t.equal(await second.stop(), 0);
  t.ok(statSync(socket).isSocket(), 'the second daemon did not remove the first one\'s socket');

  t.equal(await first.stop(), 0, 'SIGTERM: exit 0');
  t.notOk(statSync(socket, { throwIfNoEntry: false }), 'socket removed on stop');

  const off = await startDaemonProcess(['--tor', '127.0.0.1:1', '--no-control'], { ...CHILD_ENV, XDG_RUNTIME_DIR: dir });
  t.teardown(() => off.stop());
  t.ok(off.logs().some((l) => typeof l.msg === 'string' && l.msg.startsWith('no control socket')), '--no-control: none, and the log says so');
  t.notOk(statSync(path.join(dir, 'xmpp-onion-proxy'), { throwIfNoEntry: false }), 'nothing made under XDG_RUNTIME_DIR');
});

t.test('"control" in --config: used by the daemon and by status --config; false turns it off', async (t) => {
  const { dir, socket } = controlDir(t);
  const config = path.join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ control: socket, tor: '127.0.0.1:1' }));
  const daemon = await startDaemonProcess(['--config', config], CHILD_ENV);
  t.teardown(() => daemon.stop());
  const status = await runCli(['status', '--json', '--config', config]);
  t.equal(status.code, 0);
  t.equal((JSON.parse(status.stdout) as SnapshotMessage).daemon.pid, daemon.child.pid, 'status found the socket through the config file');
  writeFileSync(config, JSON.stringify({ control: false }));
  const off = await runCli(['status', '--config', config]);
  t.equal(off.code, 2, 'a config without a control socket: usage error');
  t.equal(off.stderr, `xmpp-onion-proxy: --config ${config}: the daemon runs without a control socket ("control": false)\n`);
  writeFileSync(config, JSON.stringify({ control: 5 }));
  const bad = await refusedStart(['--config', config]);
  t.equal(bad.code, 2, 'a control that is not a path: exit 2');
  t.match(bad.stderr, /"control": expected the path of a Unix socket/);
});
