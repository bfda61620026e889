/**
 * The built daemon under `strace -f` (Debian `strace`): every network system call and every file
 * open of every thread goes to a file, read back by `networkReport()` to prove what the daemon
 * connected to and that it never resolved a name.
 */
import type { ChildProcess } from 'node:child_process';
import type { Test } from 'tap';
import { readFile } from 'node:fs/promises';
import { CLI, watchDaemonOutput } from './daemon-process.js';
import { exited, spawnTied } from './prosody.js';

export interface TracedDaemon {
  readonly child: ChildProcess;
  readonly port: number;
  readonly socksPort?: number;
  logs(): Array<Record<string, unknown>>;
  rawLogs(): string;
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM to the daemon itself (not strace), then waits for strace to finish the trace. */
  stop(): Promise<number | null>;
}

export async function startTracedDaemon(traceFile: string, args: readonly string[]): Promise<TracedDaemon> {
  // No test daemon reads the machine's own map files (as test/helpers/daemon-process.ts does).
  const env = { ...process.env, XMPP_ONION_PROXY_SYSTEM_MAP: '', XMPP_ONION_PROXY_USER_MAP: '' };
  // setpriv ties the daemon to strace (strace 6.1 has no --kill-on-exit): if strace dies, so does the daemon.
  const child = spawnTied('strace', ['-f', '-qq', '-e', 'trace=%network,open,openat,openat2,execve', '-e', 'signal=none', '-o', traceFile,
    'setpriv', '--pdeathsig', 'KILL', '--', process.execPath, CLI, '--listen', '127.0.0.1:0', '--no-control', ...args],
  { stdio: ['ignore', 'pipe', 'pipe'], env });
  const { logs, rawLogs, waitForLog } = watchDaemonOutput(child, 20_000);
  const started = await waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('listening on'));
  let stopped: Promise<number | null> | undefined;
  return {
    child,
    port: started.port as number,
    ...(typeof started.socksPort === 'number' ? { socksPort: started.socksPort } : {}),
    logs,
    rawLogs,
    waitForLog,
    stop: () => {
      stopped ??= (async () => {
        if (child.exitCode === null) {
          const pid = await daemonPid(traceFile);
          if (pid !== undefined) process.kill(pid, 'SIGTERM');
          else child.kill('SIGKILL');
        }
        return (await exited(child)).code;
      })();
      return stopped;
    },
  };
}

/** The traced node process: the first pid in the trace to execve() it. */
async function daemonPid(traceFile: string): Promise<number | undefined> {
  const text = await readFile(traceFile, 'utf8');
  const match = /^(\d+)\s+execve\("[^"]*node[^"]*"/m.exec(text);
  return match ? Number(match[1]) : undefined;
}

export interface NetworkReport {
  /** Every connect() target, as "family host:port" (or a path for AF_UNIX). */
  readonly connects: string[];
  readonly sockets: string[];
  readonly binds: string[];
  /** sendto/sendmsg with an explicit address (UDP-style), as "host:port". */
  readonly datagrams: string[];
  /** Files opened that only a name lookup reads, with how often. */
  readonly resolverFiles: Map<string, number>;
  readonly lines: number;
}

const RESOLVER_FILES = ['/etc/resolv.conf', '/etc/nsswitch.conf', '/etc/hosts', '/etc/gai.conf', '/etc/host.conf', '/etc/services'];

export function networkReport(trace: string): NetworkReport {
  const connects: string[] = [];
  const sockets: string[] = [];
  const binds: string[] = [];
  const datagrams: string[] = [];
  const resolverFiles = new Map<string, number>();
  const address = (args: string): string => {
    const inet = /sa_family=(AF_INET6?), sin6?_port=htons\((\d+)\).*?(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")/.exec(args);
    if (inet) return `${inet[1]} ${inet[3] ?? inet[4]}:${inet[2]}`;
    const unix = /sa_family=AF_UNIX, sun_path=([^}]*)/.exec(args);
    if (unix) return `AF_UNIX ${unix[1]}`;
    const family = /sa_family=(\w+)/.exec(args);
    return family ? family[1]! : args.slice(0, 80);
  };
  const lines = trace.split('\n');
  for (const line of lines) {
    const call = /^\d+\s+(\w+)\((.*)$/.exec(line);
    if (!call) continue;
    const [, name, args] = call as unknown as [string, string, string];
    if (name === 'connect') connects.push(address(args));
    else if (name === 'socket') sockets.push(args.split(',').slice(0, 2).map((s) => s.trim()).join(' '));
    else if (name === 'bind') binds.push(address(args));
    else if ((name === 'sendto' || name === 'sendmsg' || name === 'sendmmsg') && /sa_family=/.test(args)) datagrams.push(address(args));
    else if (name === 'open' || name === 'openat' || name === 'openat2') {
      const file = /"([^"]+)"/.exec(args)?.[1];
      if (file && RESOLVER_FILES.includes(file)) resolverFiles.set(file, (resolverFiles.get(file) ?? 0) + 1);
    }
  }
  return { connects, sockets, binds, datagrams, resolverFiles, lines: lines.length };
}

/**
 * What a traced daemon may have done on the network: every connect() to Tor's SOCKS port (at least
 * `minConnects`), TCP over IPv4 only, nothing sent to an address (no DNS query), listening on
 * 127.0.0.1 only, and no resolver file read beyond c-ares' one-time set-up.
 */
export function checkTorOnly(t: Test, report: NetworkReport, torPort: number, minConnects: number): void {
  t.ok(report.lines > 100, `a real trace (${report.lines} lines)`);
  const tor = `AF_INET 127.0.0.1:${torPort}`;
  t.ok(report.connects.filter((c) => c === tor).length >= minConnects, `connected to Tor at least ${minConnects} times (${report.connects.length} connects)`);
  t.same(report.connects.filter((c) => c !== tor), [], 'every connect() went to Tor\'s SOCKS port');
  t.same(report.sockets.filter((s) => !/^AF_INET SOCK_STREAM/.test(s)), [], 'only TCP/IPv4 sockets: no UDP, no netlink, no IPv6');
  t.same(report.datagrams, [], 'nothing sent to an address (no DNS query)');
  t.same(report.binds.filter((b) => !b.startsWith('AF_INET 127.0.0.1:')), [], 'listening on 127.0.0.1 only');
  t.same([...report.resolverFiles].filter(([file, n]) => !(['/etc/resolv.conf', '/etc/nsswitch.conf'].includes(file) && n <= 1)), [],
    'no resolver file read beyond c-ares\' one-time set-up (no hosts, gai.conf or services: no getaddrinfo)');
}
