import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import { MonitorModel } from '../../src/control/monitor-view.js';
import type { SnapshotMessage } from '../../src/control/protocol.js';
import { requireBuild } from '../cli/built-cli.js';
import { readUntil, starttlsClient } from '../helpers/xmpp-wire.js';
import { CHILD_ENV, CLI, ONION_DOMAIN, refusedConnection, setup, until } from './fixture.js';
import { loadBundledMap } from '../../src/onionmap/bundled.js';

const BUNDLED = loadBundledMap().length;

if (!requireBuild(t)) process.exit(1);

const tmuxThere = spawnSync('tmux', ['-V']).status === 0;

interface Tmux {
  run(...args: string[]): string;
  screen(): string;
  paneDead(): { dead: boolean; status: number | undefined };
}

/** A private tmux server (its own socket name and config), killed at teardown; the command runs in a 120×40 pane. */
function tmux(t: Test, dir: string, command: string): Tmux {
  const name = `xop-monitor-${randomBytes(6).toString('hex')}`;
  const conf = path.join(dir, 'tmux.conf');
  // The pane stays after the command exits, so its exit status can be read.
  writeFileSync(conf, 'set -g remain-on-exit on\nset -g status off\n');
  const run = (...args: string[]): string => {
    const result = spawnSync('tmux', ['-L', name, '-f', conf, ...args], { encoding: 'utf8', env: CHILD_ENV });
    if (result.status !== 0) throw new Error(`tmux ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };
  // tmux may mark the pane dead before it has reaped the command (no #{pane_dead_status} yet,
  // seen under gVisor): the pane's shell writes the exit code to a file instead.
  const exitFile = path.join(dir, `${name}.exit`);
  run('new-session', '-d', '-x', '120', '-y', '40', '-s', 'm', `${command}; echo $? > ${exitFile}`);
  t.teardown(() => void spawnSync('tmux', ['-L', name, 'kill-server']));
  return {
    run,
    screen: () => run('capture-pane', '-p', '-t', 'm'),
    paneDead: () => {
      const written = existsSync(exitFile) ? readFileSync(exitFile, 'utf8').trim() : '';
      return written === '' ? { dead: false, status: undefined } : { dead: true, status: Number(written) };
    },
  };
}

t.test('monitor on a terminal (tmux): renders counters, connections and refusals live, and exits on q', { skip: tmuxThere ? false : 'tmux is not installed' }, async (t) => {
  const s = await setup(t);
  const term = tmux(t, s.dir, `${process.execPath} ${CLI} monitor --control ${s.socket}`);
  await until(() => /accepted 0 +open 0 +relaying 0 +refused 0/.test(term.screen()), 'the first screen', 15_000, 50);

  const { secure } = await starttlsClient(s.daemon.port, ONION_DOMAIN, s.caCert);
  t.teardown(() => secure.destroy());
  secure.write('hi');
  await readUntil(secure, (r) => r === 'hi');
  await refusedConnection(s.daemon.port);
  await until(() => /accepted 2 +open 1 +relaying 1 +refused 1/.test(term.screen()), 'the counters after two connections', 15_000, 50);
  const screen = term.screen();
  t.match(screen, new RegExp(`^xmpp-onion-proxy \\d+\\.\\d+\\.\\d+ · Tor 127\\.0\\.0\\.1:\\d+ answers · map gen 1 \\(${BUNDLED + 1} entries\\) · up \\S+ · pid \\d+$`, 'm'), 'the head line');
  t.match(screen, /^CONNECTIONS \(1 open\)$/m);
  t.match(screen, /^ {2}1 +connect-server +onion +starttls +relaying +\d+\S*$/m, 'the open connection');
  t.match(screen, /^REFUSED {2}1 \(client-restricted-xml 1\)$/m);
  t.match(screen, /^ {2}\d\d:\d\d:\d\d {2}#2 {2}client-restricted-xml$/m, 'the recent refusal');
  t.match(screen, /^q or Ctrl-C: quit/m);
  t.notMatch(screen, /example\.test/, 'no domain unless asked');
  t.comment(`screen:\n${screen.trimEnd()}`);

  term.run('send-keys', '-t', 'm', 'q');
  await until(() => term.paneDead().dead, 'monitor to exit', 10_000, 50);
  t.equal(term.paneDead().status, 0, 'exit code 0');
  t.notMatch(term.screen(), /CONNECTIONS/, 'the terminal is given back as it was (alternate screen left)');
});

t.test('monitor exits on Ctrl-C too', { skip: tmuxThere ? false : 'tmux is not installed' }, async (t) => {
  const s = await setup(t);
  const term = tmux(t, s.dir, `${process.execPath} ${CLI} monitor --control ${s.socket}`);
  await until(() => /accepted 0/.test(term.screen()), 'the first screen', 15_000, 50);
  term.run('send-keys', '-t', 'm', 'C-c');
  await until(() => term.paneDead().dead, 'monitor to exit', 10_000, 50);
  t.equal(term.paneDead().status, 0, 'exit code 0');
});

t.test('monitor when standard output is not a terminal: one line per event; SIGINT stops it with 0; daemon gone is 1', async (t) => {
  const s = await setup(t);
  const child = spawn(process.execPath, [CLI, 'monitor', '--control', s.socket], { env: CHILD_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await until(() => out.includes(' snapshot '), 'the snapshot line');
  await refusedConnection(s.daemon.port);
  await until(() => out.includes(' closed '), 'the closed line');
  const lines = out.trimEnd().split('\n');
  t.match(lines[0], new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\S+Z snapshot accepted=0 open=0 relaying=0 refused=0 map=1/${BUNDLED + 1} tor=ok dropped=0$`));
  t.match(lines.slice(1), [
    /^\S+Z #1 accepted door=connect-server$/,
    /^\S+Z #1 refused reason=client-restricted-xml$/,
    /^\S+Z #1 closed reason=client-restricted-xml fromClient=0 fromServer=0 ms=\d+$/,
  ]);
  t.equal(lines.length, 4, 'one line per event');
  child.kill('SIGINT');
  t.equal(await exited, 0, 'SIGINT: exit 0');

  const json = spawn(process.execPath, [CLI, 'monitor', '--json', '--control', s.socket], { env: CHILD_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => json.kill('SIGKILL'));
  let jsonOut = '';
  let jsonErr = '';
  json.stdout.on('data', (chunk: Buffer) => (jsonOut += chunk.toString()));
  json.stderr.on('data', (chunk: Buffer) => (jsonErr += chunk.toString()));
  const jsonExited = new Promise<number | null>((resolve) => json.once('exit', (code) => resolve(code)));
  await until(() => jsonOut.includes('\n'), 'a JSON line');
  t.match(JSON.parse(jsonOut.split('\n')[0]!) as SnapshotMessage, { type: 'snapshot', version: 1 }, '--json: the snapshot as JSON');
  await s.daemon.stop();
  t.equal(await jsonExited, 1, 'the daemon stopping ends it with 1');
  t.equal(jsonErr, 'xmpp-onion-proxy: the daemon closed the control connection: daemon stopping\n');
});

t.test('the live view fits the terminal: lines cut to its width, connections to its height', async (t) => {
  const model = new MonitorModel();
  const at = Date.now();
  const connections = Array.from({ length: 50 }, (_, i) => ({ id: i + 1, door: 'connect-server' as const, route: 'onion' as const, mode: 'starttls' as const, state: 'relaying' as const, ageMs: 1000 }));
  const snapshot: SnapshotMessage = {
    type: 'snapshot', version: 1, at,
    daemon: { version: '1.2.3', pid: 42, uptimeMs: 61_000, rssBytes: 50 << 20 },
    tor: { endpoint: '127.0.0.1:9050', reachable: true, checkedAt: at },
    map: { generation: 3, entries: 29 },
    doors: [{ door: 'connect-server', host: '127.0.0.1', port: 5222 }],
    counters: { accepted: 60, open: 50, relaying: 50, refused: { 'server-no-starttls': 2 }, refusedTotal: 2, bytesFromClient: 2048, bytesFromServer: 1 << 20 },
    connections, connectionsOmitted: 0,
    recentRefusals: [{ at, id: 7, reason: 'server-no-starttls' }],
    control: { path: '/run/x/control.sock', maxClients: 8, clients: [] },
    you: { client: 1, subscribed: true, domains: false, dropped: 0 },
  };
  model.apply(snapshot);
  const lines = model.render(60, 24, at, 'q: quit');
  t.ok(lines.length <= 24, `at most 24 lines (${lines.length})`);
  t.ok(lines.every((l) => [...l].length <= 60), 'none wider than 60 columns');
  t.match(lines.join('\n'), /… \d+ more/, 'the connections that do not fit are counted');
  t.equal(lines.at(-1), 'q: quit', 'the footer stays');

  model.apply({ type: 'event', version: 1, at, event: 'closed', id: 1, reason: 'done', fromClient: 1024, fromServer: 0, ms: 5 });
  model.apply({ type: 'event', version: 1, at, event: 'refused', id: 2, reason: 'tls-framing-server' });
  const after = model.render(200, 40, at, '').join('\n');
  t.match(after, /accepted 60 +open 49 +relaying 48 +refused 3 +from clients 3\.0 KiB +from servers 1\.0 MiB/, 'events update the counters');
  t.match(after, /REFUSED {2}3 \(server-no-starttls 2, tls-framing-server 1\)/);
});

t.test('many refusal reasons wrap onto a few lines', async (t) => {
  const model = new MonitorModel();
  const at = Date.now();
  const refused = Object.fromEntries(['client-plaintext-auth', 'client-restricted-xml', 'client-stanza-before-tls', 'server-no-starttls', 'tor-unavailable'].map((r) => [r, 1]));
  model.apply({
    type: 'snapshot', version: 1, at,
    daemon: { version: '1.2.3', pid: 42, uptimeMs: 1000, rssBytes: 1 },
    tor: { endpoint: '127.0.0.1:9050', reachable: false, problem: 'refused: ECONNREFUSED', checkedAt: at },
    map: { generation: 1, entries: 29 },
    doors: [],
    counters: { accepted: 5, open: 0, relaying: 0, refused, refusedTotal: 5, bytesFromClient: 0, bytesFromServer: 0 },
    connections: [], connectionsOmitted: 0, recentRefusals: [],
    control: { path: '/x', maxClients: 8, clients: [] },
    you: { client: 1, subscribed: true, domains: false, dropped: 0 },
  });
  const lines = model.render(60, 30, at, '');
  const start = lines.findIndex((l) => l.startsWith('REFUSED'));
  t.match(lines.slice(start, start + 3).join(' '), /client-plaintext-auth 1, .*tor-unavailable 1\)/, 'every reason shown');
  t.ok(lines.every((l) => [...l].length <= 60));
  t.match(lines[0], /Tor 127\.0\.0\.1:9050 NOT REACHABLE/);
});
