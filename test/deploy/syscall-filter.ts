// The service's SystemCallFilter= must allow every system call the daemon makes. systemd is
// not running here, so the daemon runs under strace through a whole life (start with both
// doors, a STARTTLS session relayed inside TLS, SIGHUP reload, SIGTERM) and each call it made
// is looked up in the filter as the unit writes it, groups expanded by
// `systemd-analyze syscall-filter`. (The calls are those of this kernel; a call outside the
// list fails with EPERM rather than killing the daemon: SystemCallErrorNumber=EPERM.)
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { createTestPki } from '../helpers/certs.js';
import { CLI } from '../helpers/daemon-process.js';
import { honestScript, startFakeXmppServer } from '../helpers/fake-xmpp.js';
import { exited, spawnTied, terminate } from '../helpers/prosody.js';
import { runCommand } from '../helpers/run-command.js';
import { runCli } from '../cli/built-cli.js';
import { startSocks5Fixture } from '../helpers/socks5-server.js';
import { readUntil, starttlsClient } from '../helpers/xmpp-wire.js';

const SERVICE = fileURLToPath(new URL('../../systemd/xmpp-onion-proxy.service', import.meta.url));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'xop-syscalls-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));


async function expand(token: string, seen = new Map<string, string[]>()): Promise<string[]> {
  if (!token.startsWith('@')) return [token];
  const cached = seen.get(token);
  if (cached) return cached;
  const result = await runCommand('systemd-analyze', ['syscall-filter', token]);
  if (result.code !== 0) throw new Error(`systemd-analyze syscall-filter ${token}: ${result.stderr}`);
  const members = result.stdout.split('\n').slice(1).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const out = (await Promise.all(members.map((m) => expand(m, seen)))).flat();
  seen.set(token, out);
  return out;
}

/** The allowed calls as the unit's SystemCallFilter= lines build them, in order (allow-list mode). */
async function allowedCalls(unit: string): Promise<Set<string>> {
  const allowed = new Set<string>();
  for (const line of readFileSync(unit, 'utf8').split('\n')) {
    const match = /^SystemCallFilter=(~?)(.*)$/.exec(line.trim());
    if (!match) continue;
    const calls = (await Promise.all(match[2]!.split(/\s+/).filter(Boolean).map((token) => expand(token)))).flat();
    for (const call of calls) {
      if (match[1] === '~') allowed.delete(call);
      else allowed.add(call);
    }
  }
  return allowed;
}

// RuntimeDirectory=: systemd makes the folder, with RuntimeDirectoryMode=, and says where.
const RUNTIME = path.join(tmp, 'run');
const runtimeMode = /^RuntimeDirectoryMode=(\d+)$/m.exec(readFileSync(SERVICE, 'utf8'))?.[1];
mkdirSync(RUNTIME, { mode: parseInt(runtimeMode ?? '0755', 8) });
/**
 * A service's small environment, as systemd gives it, and no map layers from /etc or ~. Set with
 * `env -i`: tap adds its own loaders to the environment of every child it sees started, and
 * they would add calls of their own.
 */
const SERVICE_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8', 'XMPP_ONION_PROXY_SYSTEM_MAP=', 'XMPP_ONION_PROXY_USER_MAP=',
  `RUNTIME_DIRECTORY=${RUNTIME}`];

t.test('every system call of a whole daemon life is allowed by the unit', async (t) => {
  const allowed = await allowedCalls(SERVICE);
  t.ok(allowed.has('accept4') && !allowed.has('setuid') && !allowed.has('setrlimit'), 'the filter reads as expected (@system-service, not @privileged nor @resources)');

  const pki = await createTestPki(path.join(tmp, 'pki'), ['example.test']);
  const server = await startFakeXmppServer(honestScript(pki.serverKey, pki.serverCert));
  t.teardown(() => server.close());
  const tor = await startSocks5Fixture({ resolve: (host) => (host === 'example.test' ? server.port : undefined) });
  t.teardown(() => tor.close());
  const map = path.join(tmp, 'map.json');
  writeFileSync(map, JSON.stringify({ 'example.test': { host: 'example.test', port: 5222 } }));

  const trace = path.join(tmp, 'strace.log');
  const daemon = [process.execPath, CLI, '--listen', '127.0.0.1:0', '--socks', '127.0.0.1:0', '--tor', `127.0.0.1:${tor.port}`, '--map', map];
  const child = spawnTied('env', ['-i', ...SERVICE_ENV, 'strace', '-f', '-qq', '-o', trace, ...daemon], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => terminate(child));
  let log = '';
  child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const logLine = async (match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const line = log.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).find(match);
      if (line) return line;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`no such log line; log:\n${log}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const started = await logLine((l) => typeof l.msg === 'string' && l.msg.startsWith('listening on'));

  // One session by the book through the connect-server door, relayed inside TLS.
  const { secure } = await starttlsClient(started.port as number, 'example.test', pki.caCert);
  secure.write('ping inside TLS');
  await readUntil(secure as unknown as import('node:net').Socket, (r) => r.includes('ping inside TLS'));
  secure.end();
  await logLine((l) => l.msg === 'closed');

  // The control socket in the runtime folder answers `status`.
  const status = await runCli(['status', '--control', path.join(RUNTIME, 'control.sock')]);
  t.equal(status.code, 0, `status through the control socket\n${status.stdout}${status.stderr}`);

  // The node process is the first one strace saw.
  const pid = Number(/^(\d+)\s/.exec(readFileSync(trace, 'utf8'))?.[1]);
  t.ok(pid > 0, 'found the daemon in the trace');
  process.kill(pid, 'SIGHUP');
  await logLine((l) => l.msg === 'map reloaded');
  process.kill(pid, 'SIGTERM');
  const { code } = await exited(child);
  t.equal(code, 0, 'the daemon stopped cleanly');

  const used = new Set([...readFileSync(trace, 'utf8').matchAll(/^\d+\s+([a-z0-9_]+)\(/gm)].map((m) => m[1]!));
  t.ok(used.size > 20, `${used.size} different system calls seen`);
  const refused = [...used].filter((call) => !allowed.has(call)).sort();
  t.same(refused, [], `every call is allowed (seen: ${[...used].sort().join(' ')})`);
});
