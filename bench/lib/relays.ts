/**
 * The relays the bench compares, each in its own process so that its CPU and memory are its
 * own: the daemon (built binary), a bare Node pipe, socat and haproxy (when installed); and
 * the SOCKS5 hop that stands in for Tor.
 */
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/helpers/ports.js';
import { childPids, cpuSeconds, ioCounts, pssKiB, rssKiB, statTimes, type IoCounts } from './proc.js';
import { spawnBench, stopChild, tool, transpileChild, waitForLine, waitForPort } from './processes.js';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
/** The one-file build (scripts/bundle.mjs), built by `npm run build`. */
export const ONE_FILE_CLI = fileURLToPath(new URL('../../dist/cli/xmpp-onion-proxy.mjs', import.meta.url));

export type RelayName = 'daemon' | 'daemon-socks' | 'node-pipe' | 'socat' | 'haproxy';

export interface Relay {
  readonly name: RelayName;
  readonly pid: number;
  readonly port: number;
  /** What a client speaks to it first. */
  readonly speaks: 'xmpp' | 'socks';
  readonly child: ChildProcess;
  /** CPU seconds so far, reaped children included. */
  cpu(): number;
  /** Read and write system calls so far (the process itself, not its children). */
  io(): IoCounts | undefined;
  /** utime and stime so far (10 ms resolution), reaped children not included. */
  userSystem(): { user: number; system: number };
  /** Memory, KiB: VmRSS of the process, or the PSS summed over it and its children (socat). */
  memoryKiB(): number;
  /** Waits (bounded) until per-connection child processes are gone and reaped (socat). */
  settle(): Promise<void>;
  stop(): Promise<void>;
}

export interface Hop {
  readonly port: number;
  readonly pid: number;
  cpu(): number;
  stop(): Promise<void>;
}

export interface RelayEnv {
  /** Where transpiled children, maps and configs go. */
  readonly dir: string;
  readonly hopPort: number;
  readonly serverPort: number;
  /** A real Prosody for the login workload (bench/lib/login.ts), mapped as login.bench.test. */
  readonly loginPort?: number;
}

export interface RelayOptions {
  /** RLIMIT_NOFILE (soft = hard) for the relay process. */
  readonly nofile?: number;
  /** Extra daemon flags. */
  readonly daemonArgs?: readonly string[];
  /** Node flags for the daemon (e.g. --cpu-prof). */
  readonly nodeFlags?: readonly string[];
  readonly cwd?: string;
}

function processRelay(name: RelayName, child: ChildProcess, port: number, speaks: Relay['speaks'], perConnectionProcesses = false): Relay {
  const pid = child.pid!;
  return {
    name,
    pid,
    port,
    speaks,
    child,
    cpu: () => cpuSeconds(pid) ?? Number.NaN,
    io: () => ioCounts(pid),
    userSystem: () => {
      const times = statTimes(pid);
      return { user: times?.user ?? Number.NaN, system: times?.system ?? Number.NaN };
    },
    memoryKiB: () => {
      if (!perConnectionProcesses) return rssKiB(pid) ?? Number.NaN;
      return [pid, ...childPids(pid)].reduce((sum, p) => sum + (pssKiB(p) ?? 0), 0);
    },
    settle: async () => {
      if (!perConnectionProcesses) return;
      const deadline = Date.now() + 5000;
      while (childPids(pid).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    },
    stop: () => stopChild(child),
  };
}

/** The SOCKS hop standing in for Tor; with `delayMs`, a circuit of that one-way delay (bench/children/socks-hop.ts). */
export async function startHop(dir: string, delayMs = 0): Promise<Hop> {
  const script = await transpileChild('socks-hop', dir);
  const child = spawnBench(process.execPath, [script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DELAY_MS: String(delayMs) } });
  const line = await waitForLine(child, (l) => l.startsWith('{'));
  const pid = child.pid!;
  child.stdout?.resume();
  return { port: (JSON.parse(line) as { port: number }).port, pid, cpu: () => cpuSeconds(pid) ?? Number.NaN, stop: () => stopChild(child) };
}

/** The bench's map: both bench domains to the bench server (and the login domain to Prosody), through the hop. */
export async function writeBenchMap(env: RelayEnv): Promise<string> {
  const file = path.join(env.dir, env.loginPort === undefined ? 'bench-map.json' : 'login-map.json');
  const entry = { host: '127.0.0.1', port: env.serverPort };
  const login = env.loginPort === undefined ? {} : { 'login.bench.test': { host: '127.0.0.1', port: env.loginPort } };
  await writeFile(file, JSON.stringify({ 'tls.bench.test': entry, 'records.bench.test': entry, ...login }, null, 2));
  return file;
}

/**
 * The daemon's environment: no system or user map layer (only the bench's --map), and no
 * runtime directory, so no control socket (several daemons run at once and would share its path).
 */
export function daemonEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, XMPP_ONION_PROXY_SYSTEM_MAP: '', XMPP_ONION_PROXY_USER_MAP: '' };
  delete env.XDG_RUNTIME_DIR;
  delete env.RUNTIME_DIRECTORY;
  return env;
}

export interface DaemonRelay extends Relay {
  /** Log lines the daemon wrote so far, and the last warnings/errors among them. */
  readonly log: { lines: number; problems: string[] };
}

/** The --log-level among daemon flags (`--log-level=X` or `--log-level X`); info when absent. */
function logLevel(args: readonly string[]): string {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.startsWith('--log-level=')) return arg.slice('--log-level='.length);
    if (arg === '--log-level') return args[i + 1] ?? 'info';
  }
  return 'info';
}

/** The built daemon with the connect-server door (`daemon`) or the SOCKS door (`daemon-socks`). */
export async function startDaemon(name: 'daemon' | 'daemon-socks', env: RelayEnv, options: RelayOptions = {}): Promise<DaemonRelay> {
  const map = await writeBenchMap(env);
  // The start-up line (which says where port 0 landed) is logged at info: above that, ports are picked here.
  const quiet = !['info', 'debug', 'trace'].includes(logLevel(options.daemonArgs ?? []));
  const ports = quiet ? { listen: await freePort(), socks: await freePort() } : { listen: 0, socks: 0 };
  const args = [
    ...(options.nodeFlags ?? []), CLI, '--listen', `127.0.0.1:${ports.listen}`, '--tor', `127.0.0.1:${env.hopPort}`, '--map', map,
    ...(name === 'daemon-socks' ? ['--socks', `127.0.0.1:${ports.socks}`] : []), ...(options.daemonArgs ?? []),
  ];
  const child = spawnBench(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: daemonEnv(),
    ...(options.nofile !== undefined ? { nofile: options.nofile } : {}),
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
  });
  let started: { port: number; socksPort?: number };
  if (quiet) {
    await waitForPort(name === 'daemon-socks' ? ports.socks : ports.listen, child);
    started = { port: ports.listen, socksPort: ports.socks };
  } else {
    started = JSON.parse(await waitForLine(child, (l) => l.includes('listening on'))) as { port: number; socksPort?: number };
  }
  const log = { lines: 1, problems: [] as string[] };
  let pending = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const text = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      log.lines++;
      // pino levels: 40 warn, 50 error, 60 fatal.
      if (/"level":[456]0/.test(text)) log.problems = [...log.problems.slice(-9), text.slice(0, 400)];
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    log.problems = [...log.problems.slice(-9), `stderr: ${chunk.toString('utf8').slice(0, 400)}`];
  });
  const port = name === 'daemon-socks' ? started.socksPort : started.port;
  if (port === undefined) throw new Error(`the daemon did not say where its ${name} door listens: ${JSON.stringify(started)}`);
  return { ...processRelay(name, child, port, name === 'daemon' ? 'xmpp' : 'socks'), log };
}

export async function startNodePipe(env: RelayEnv, options: RelayOptions = {}): Promise<Relay> {
  const script = await transpileChild('node-pipe', env.dir);
  const child = spawnBench(process.execPath, [...(options.nodeFlags ?? []), script, String(env.hopPort)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.nofile !== undefined ? { nofile: options.nofile } : {}),
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
  });
  const line = await waitForLine(child, (l) => l.startsWith('{'));
  child.stdout?.resume();
  return processRelay('node-pipe', child, (JSON.parse(line) as { port: number }).port, 'socks');
}

/** socat, forking a process per connection, default 8 KiB buffer, TCP_NODELAY both sides. */
export async function startSocat(env: RelayEnv, options: RelayOptions = {}): Promise<Relay | undefined> {
  const socat = tool('socat');
  if (!socat) return undefined;
  const port = await freePort();
  const child = spawnBench(socat, [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,nodelay,backlog=4096`, `TCP:127.0.0.1:${env.hopPort},nodelay`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    ...(options.nofile !== undefined ? { nofile: options.nofile } : {}),
  });
  await waitForPort(port, child);
  await new Promise((resolve) => setTimeout(resolve, 50));
  // The readiness probe's own connection forked a child: let it go before anything is measured.
  const relay = processRelay('socat', child, port, 'socks', true);
  await relay.settle();
  return relay;
}

/** haproxy in tcp mode, one thread (like Node's one event loop), no logging. */
export async function startHaproxy(env: RelayEnv, options: RelayOptions = {}): Promise<Relay | undefined> {
  const haproxy = tool('haproxy');
  if (!haproxy) return undefined;
  const port = await freePort();
  const config = path.join(env.dir, `haproxy-${port}.cfg`);
  await writeFile(config, [
    'global',
    '  nbthread 1',
    '  maxconn 9000',
    'defaults',
    '  mode tcp',
    '  maxconn 9000',
    '  timeout connect 10s',
    '  timeout client 1h',
    '  timeout server 1h',
    'frontend bench',
    `  bind 127.0.0.1:${port}`,
    '  default_backend hop',
    'backend hop',
    `  server hop 127.0.0.1:${env.hopPort}`,
    '',
  ].join('\n'));
  const child = spawnBench(haproxy, ['-f', config, '-db', '-q'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    ...(options.nofile !== undefined ? { nofile: options.nofile } : {}),
  });
  await waitForPort(port, child);
  return processRelay('haproxy', child, port, 'socks');
}
