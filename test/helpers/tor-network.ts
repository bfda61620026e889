/**
 * A private Tor network on 127.0.0.1 for tests: 3 directory authorities that
 * are also relays, 3 more relays (one of them an exit that only accepts
 * 127.0.0.1), one onion-service instance and one client instance.
 *
 * Nothing here talks to the public Tor network: every node gets our own
 * `DirAuthority` lines (so no default authorities), `UseDefaultFallbackDirs 0`
 * (so no fallback directories), every listener is bound to 127.0.0.1, and the
 * exit's DNS resolver is pointed at 127.0.0.1 with hijack detection off (an
 * exit otherwise resolves well-known public names at start).
 *
 * Every tor process is started here, recorded by pid (also in `<dir>/tor.pids`
 * for a detached, shared network) and stopped by pid in `stop()`.  As a
 * backstop each tor also gets `__OwningControllerProcess <owner pid>`, so it
 * exits by itself (within about 15 s) once the owner process is gone.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { onionFromPublicKey } from '../../src/onionmap/onion-address.js';

export interface OnionServiceSpec {
  /** Key in `TorNetwork.onions`; also the HiddenServiceDir name (letters, digits, '-', '_'). */
  name: string;
  /** 127.0.0.1 port that the onion's `virtualPort` forwards to. */
  targetPort: number;
  /** Default 5222. */
  virtualPort?: number;
  extraPorts?: Array<{ virtualPort: number; targetPort: number }>;
}

export interface StartTorNetworkOptions {
  /** Folder for every node's DataDirectory, torrc and log. Default: a fresh folder in os.tmpdir(). It is removed by stop(). */
  dir?: string;
  services: OnionServiceSpec[];
  /** Overall bound for start-up, readiness probes included. Default 120 000 ms. */
  timeoutMs?: number;
  /**
   * Leave the tor processes running when this process exits (a network shared
   * by several test processes; something else must call stopTorProcesses()).
   * Default false: they are killed on this process's 'exit'.
   */
  detached?: boolean;
  /** tor exits by itself once this pid is gone (`__OwningControllerProcess`). Default process.pid. */
  ownerPid?: number;
  /** Progress lines (for debugging start-up). */
  log?: (line: string) => void;
  /** Also write an info-level log, `<node dir>/info.log` (large; for debugging). */
  infoLog?: boolean;
}

export interface TorNodeInfo {
  name: string;
  nickname: string;
  role: 'authority' | 'relay' | 'exit' | 'onion-service' | 'client';
  pid: number;
  dataDir: string;
  logFile: string;
  orPort?: number;
  dirPort?: number;
  controlPort?: number;
  fingerprint?: string;
}

export interface TorNetworkTimings {
  /** Key and certificate generation. */
  keygenMs: number;
  /** From the start until a consensus lists every relay as Running. */
  consensusMs: number;
  /** From the start until every onion answered a SOCKS CONNECT. */
  readyMs: number;
  /** Per onion: from the start of its first probe until its first successful CONNECT. */
  firstConnectMs: Record<string, number>;
  /** Per onion: how many probes it took. */
  probeAttempts: Record<string, number>;
  /** Per onion: the replies of the failed probes, in order (e.g. [0xf0]). */
  probeFailures: Record<string, number[]>;
}

export interface TorNetwork {
  dir: string;
  /** Client SocksPort with ExtendedErrors. */
  socksPort: number;
  /** Client SocksPort without ExtendedErrors, with IsolateDestAddr IsolateDestPort (like Tails' 9050). */
  plainSocksPort: number;
  /** Client ControlPort (HashedControlPassword = controlPassword; cookie auth too, see controlCookieFile). */
  controlPort: number;
  controlPassword?: string;
  controlCookieFile: string;
  /** name → 56-character v3 address + '.onion'. */
  onions: Record<string, string>;
  /** RSA fingerprint of the exit relay (ExitPolicy accept 127.0.0.1:*). */
  exitFingerprint: string;
  nodes: TorNodeInfo[];
  pids: number[];
  startupMs: number;
  timings: TorNetworkTimings;
  /** Resident memory of all tor processes, in bytes (from /proc/PID/status VmRSS). */
  rssBytes(): number;
  stop(): Promise<void>;
}

const DEFAULT_VIRTUAL_PORT = 5222;
const TOR = 'tor';
const TOR_GENCERT = 'tor-gencert';
const LOOPBACK = '127.0.0.1';

/* ------------------------------------------------------------------------ */
/* Small utilities                                                          */
/* ------------------------------------------------------------------------ */

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `check` every `intervalMs` until it returns a non-undefined value or `deadline` (epoch ms) passes. */
async function pollUntil<T>(
  what: string,
  deadline: number,
  intervalMs: number,
  check: () => Promise<T | undefined> | T | undefined,
  describeFailure?: () => Promise<string> | string,
): Promise<T> {
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) {
      const extra = describeFailure ? await describeFailure() : '';
      throw new Error(`timed out waiting for ${what}${extra ? `\n${extra}` : ''}`);
    }
    await delay(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

function run(cmd: string, args: string[], input?: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 60_000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

export function tailFile(file: string, lines = 30): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.split('\n').slice(-lines - 1).join('\n');
  } catch {
    return `(no log at ${file})`;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** VmRSS of a process in bytes, 0 if it is gone. */
export function processRssBytes(pid: number): number {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m?.[1] ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Whether 127.0.0.1:port can be listened on right now. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: LOOPBACK, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * `count` distinct 127.0.0.1 ports, free now, chosen at random *below* the
 * kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768–60999 by
 * default). A port from the ephemeral range (what listen(0), and so
 * ports.ts's freePorts(), hands out) can be taken as the source port of any
 * outgoing connection between being chosen and being listened on; with the
 * thousands of loopback connections other tests make here, that happens.
 * The network's own ports are listened on a few seconds after the choice and
 * the onion targets possibly minutes later, so they come from below.
 */
export async function freePortsBelowEphemeralRange(count: number): Promise<number[]> {
  let low = 32768;
  try {
    const m = /^(\d+)/.exec(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'));
    if (m?.[1]) low = Number(m[1]);
  } catch { /* not Linux: keep the default */ }
  const min = Math.max(10_000, low - 16_384);
  const max = low - 1;
  if (max - min < count * 4) throw new Error(`no room below the ephemeral port range (starts at ${low})`);
  const chosen = new Set<number>();
  for (let tries = 0; chosen.size < count; tries++) {
    if (tries > count * 200) throw new Error(`could not find ${count} free ports in ${min}-${max}`);
    const port = min + crypto.randomInt(max - min + 1);
    if (!chosen.has(port) && (await canListen(port))) chosen.add(port);
  }
  return [...chosen];
}

/** The command line of a process ('' if it is gone or a zombie). */
function processCmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

export interface StopTorProcessesOptions {
  /** SIGTERM first, SIGKILL after this many ms. Default 10 000. */
  graceMs?: number;
  /**
   * Only signal a pid whose command line contains this string (e.g. the
   * network's folder): protects against a pid that was reused by someone
   * else's process since it was recorded.
   */
  cmdlineMustContain?: string;
}

/**
 * Stop tor processes by pid: SIGTERM, wait up to `graceMs` for each to be
 * gone, then SIGKILL. Works for processes that are not our children (a
 * shared network started by another test process), by polling `kill(pid, 0)`.
 */
export async function stopTorProcesses(pids: number[], opts: StopTorProcessesOptions = {}): Promise<void> {
  const graceMs = opts.graceMs ?? 10_000;
  const ours = pids.filter((pid) => isAlive(pid)
    && (opts.cmdlineMustContain === undefined || processCmdline(pid).includes(opts.cmdlineMustContain)));
  for (const pid of ours) {
    try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ }
  }
  const deadline = Date.now() + graceMs;
  while (ours.some(isAlive) && Date.now() < deadline) await delay(50);
  for (const pid of ours.filter(isAlive)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  const killDeadline = Date.now() + 5_000;
  while (ours.some(isAlive) && Date.now() < killDeadline) await delay(50);
}

/* ------------------------------------------------------------------------ */
/* Onion addresses                                                          */
/* ------------------------------------------------------------------------ */

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

export function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/**
 * v3 onion address (with '.onion') for a 32-byte ed25519 public key, by the daemon's own code
 * (src/onionmap), so that comparing it with tor's `hostname` files checks that code against Tor.
 */
export function onionAddressFromPublicKey(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new Error('an ed25519 public key has 32 bytes');
  return onionFromPublicKey(Buffer.from(publicKey));
}

/** A well-formed v3 onion address for a fresh random ed25519 key: no such service exists. */
export function randomOnionAddress(): string {
  const { publicKey } = crypto.generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  return onionAddressFromPublicKey(raw);
}

/* ------------------------------------------------------------------------ */
/* SOCKS5                                                                   */
/* ------------------------------------------------------------------------ */

export interface Socks5Result {
  /** SOCKS5 reply code (0 = succeeded), or -1 if the proxy closed/failed before replying. */
  reply: number;
  /** Connected socket when reply === 0 (caller must destroy it), else null. */
  socket: net.Socket | null;
  /** What went wrong before a reply, when reply === -1. */
  error?: string;
  elapsedMs: number;
}

export interface Socks5Options {
  socksPort: number;
  socksHost?: string;
  host: string;
  port: number;
  /** RFC 1929 username/password (Tor uses it for stream isolation). */
  username?: string;
  password?: string;
  timeoutMs?: number;
}

/**
 * A tiny raw SOCKS5 client: greeting, optional RFC 1929 auth, CONNECT with a
 * domain name (or an IPv4 literal). It reads exactly the bytes of each
 * handshake message (`read(n)` on 'readable'), so whatever the server sends
 * after the reply, end of stream included, stays in the socket for the
 * caller, which is handed back not flowing.
 */
export function socks5Connect(opts: Socks5Options): Promise<Socks5Result> {
  const started = Date.now();
  const timeoutMs = opts.timeoutMs ?? 60_000;
  if (Buffer.byteLength(opts.host) > 255) return Promise.reject(new Error('SOCKS5 host name longer than 255 bytes'));
  return new Promise((resolve) => {
    const socket = net.connect({ host: opts.socksHost ?? LOOPBACK, port: opts.socksPort });
    const useAuth = opts.username !== undefined;
    type Stage = 'method' | 'auth' | 'replyHead' | 'replyNameLen' | 'replyTail' | 'done';
    let stage: Stage = 'method';
    let need = 2;
    let reply = -1;
    let settled = false;

    const finish = (result: Omit<Socks5Result, 'elapsedMs'>): void => {
      if (settled) return;
      settled = true;
      stage = 'done';
      clearTimeout(timer);
      socket.removeListener('readable', onReadable);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
      if (result.socket === null) socket.destroy();
      // Errors after the handshake surface as 'close' (hadError); the caller
      // may add its own 'error' listener.
      else socket.on('error', () => {});
      resolve({ ...result, elapsedMs: Date.now() - started });
    };
    const timer = setTimeout(() => finish({ reply: -1, socket: null, error: `no SOCKS reply within ${timeoutMs} ms` }), timeoutMs);
    const onError = (err: Error): void => finish({ reply: -1, socket: null, error: err.message });
    const onClose = (): void => finish({ reply: -1, socket: null, error: `proxy closed the connection during ${stage}` });

    const sendConnect = (): void => {
      let addr: Buffer;
      if (net.isIPv4(opts.host)) {
        addr = Buffer.from([1, ...opts.host.split('.').map(Number)]);
      } else {
        const name = Buffer.from(opts.host, 'utf8');
        addr = Buffer.concat([Buffer.from([3, name.length]), name]);
      }
      socket.write(Buffer.concat([Buffer.from([5, 1, 0]), addr, Buffer.from([(opts.port >> 8) & 0xff, opts.port & 0xff])]));
      stage = 'replyHead';
      need = 4; // VER REP RSV ATYP
    };

    const onReadable = (): void => {
      while (stage !== 'done') {
        const msg = socket.read(need) as Buffer | null;
        if (msg === null) return; // wait for more
        if (msg.length < need) {
          finish({ reply: -1, socket: null, error: `short SOCKS message during ${stage}` });
          return;
        }
        switch (stage) {
          case 'method': {
            const method = msg[1];
            if (useAuth && method === 2) {
              const u = Buffer.from(opts.username ?? '', 'utf8');
              const p = Buffer.from(opts.password ?? '', 'utf8');
              socket.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
              stage = 'auth';
              need = 2;
            } else if (method === 0) {
              sendConnect();
            } else {
              finish({ reply: -1, socket: null, error: `proxy chose SOCKS method ${method}` });
            }
            break;
          }
          case 'auth':
            if (msg[1] !== 0) finish({ reply: -1, socket: null, error: `SOCKS username/password refused (${msg[1]})` });
            else sendConnect();
            break;
          case 'replyHead': {
            reply = msg[1] ?? -1;
            const atyp = msg[3];
            if (atyp === 3) {
              stage = 'replyNameLen';
              need = 1;
            } else {
              stage = 'replyTail';
              need = (atyp === 4 ? 16 : 4) + 2;
            }
            break;
          }
          case 'replyNameLen':
            stage = 'replyTail';
            need = (msg[0] ?? 0) + 2;
            break;
          case 'replyTail':
            if (reply === 0) finish({ reply: 0, socket });
            else finish({ reply, socket: null });
            break;
        }
      }
    };

    socket.once('connect', () => socket.write(Buffer.from(useAuth ? [5, 1, 2] : [5, 1, 0])));
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('readable', onReadable);
  });
}

export const SOCKS5_REPLY_NAMES: Record<number, string> = {
  0x00: 'succeeded',
  0x01: 'general SOCKS server failure',
  0x02: 'connection not allowed by ruleset',
  0x03: 'network unreachable',
  0x04: 'host unreachable',
  0x05: 'connection refused',
  0x06: 'TTL expired',
  0x07: 'command not supported',
  0x08: 'address type not supported',
  0xf0: 'onion service descriptor can not be found',
  0xf1: 'onion service descriptor is invalid',
  0xf2: 'onion service introduction failed',
  0xf3: 'onion service rendezvous failed',
  0xf4: 'onion service client authorization missing',
  0xf5: 'onion service client authorization wrong',
  0xf6: 'onion service address is invalid',
  0xf7: 'onion service introduction timed out',
};

/* ------------------------------------------------------------------------ */
/* Control port                                                             */
/* ------------------------------------------------------------------------ */

export interface ControlReply {
  status: number;
  lines: string[];
}

/** A minimal Tor control-port client (authenticates with a password). */
export class TorControl {
  private buffer = '';
  private pending: Array<{ resolve: (r: ControlReply) => void; reject: (e: Error) => void }> = [];
  private current: string[] = [];
  private dataMode = false;
  private closedError: Error | null = null;
  readonly events: Array<(line: string) => void> = [];

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    const fail = (err: Error): void => {
      this.closedError = err;
      for (const p of this.pending.splice(0)) p.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('control connection closed')));
  }

  static async connect(port: number, password: string | undefined, timeoutMs = 10_000): Promise<TorControl> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: LOOPBACK, port });
      const timer = setTimeout(() => { s.destroy(); reject(new Error(`control port ${port}: connect timeout`)); }, timeoutMs);
      s.once('connect', () => { clearTimeout(timer); resolve(s); });
      s.once('error', (err) => { clearTimeout(timer); reject(err); });
    });
    const ctl = new TorControl(socket);
    const auth = password === undefined ? 'AUTHENTICATE' : `AUTHENTICATE "${password.replace(/["\\]/g, '\\$&')}"`;
    const reply = await ctl.command(auth);
    if (reply.status !== 250) {
      ctl.close();
      throw new Error(`control port ${port}: authentication failed: ${reply.lines.join(' ')}`);
    }
    return ctl;
  }

  command(line: string): Promise<ControlReply> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.socket.write(`${line}\r\n`);
    });
  }

  /** GETINFO one key; returns its value (multi-line values joined with '\n'). */
  async getInfo(key: string): Promise<string> {
    const reply = await this.command(`GETINFO ${key}`);
    if (reply.status !== 250) throw new Error(`GETINFO ${key}: ${reply.lines.join(' ')}`);
    const out: string[] = [];
    for (const l of reply.lines) {
      if (l === 'OK') continue;
      out.push(l.startsWith(`${key}=`) ? l.slice(key.length + 1) : l);
    }
    return out.join('\n').replace(/^\n/, '');
  }

  close(): void {
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let idx: number;
    while ((idx = this.buffer.indexOf('\r\n')) >= 0) {
      const line = this.buffer.slice(0, idx);
      this.buffer = this.buffer.slice(idx + 2);
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    if (this.dataMode) {
      if (line === '.') this.dataMode = false;
      else this.current.push(line.startsWith('..') ? line.slice(1) : line);
      return;
    }
    const status = Number(line.slice(0, 3));
    const sep = line[3];
    const text = line.slice(4);
    if (status === 650) {
      // Asynchronous event (single-line events only are of interest here).
      if (sep === ' ') for (const h of this.events) h(text);
      return;
    }
    this.current.push(text);
    if (sep === '+') this.dataMode = true;
    if (sep === ' ') {
      const lines = this.current;
      this.current = [];
      this.pending.shift()?.resolve({ status, lines });
    }
  }
}

/* ------------------------------------------------------------------------ */
/* The network                                                              */
/* ------------------------------------------------------------------------ */

interface NodePlan {
  name: string;
  nickname: string;
  role: TorNodeInfo['role'];
  dataDir: string;
  torrc: string;
  logFile: string;
  orPort?: number;
  dirPort?: number;
  controlPort?: number;
  fingerprint?: string;
  v3ident?: string;
}

/** Processes to kill and folders to remove on this process's exit (non-detached networks not stopped yet). */
const exitKillList = new Set<number>();
const exitRemoveDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of exitKillList) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    for (const dir of exitRemoveDirs) {
      try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
    }
  });
}

function validateServices(services: OnionServiceSpec[]): void {
  const seen = new Set<string>();
  for (const s of services) {
    if (!/^[A-Za-z0-9_-]+$/.test(s.name)) throw new Error(`bad onion service name ${JSON.stringify(s.name)}`);
    if (seen.has(s.name)) throw new Error(`duplicate onion service name ${s.name}`);
    seen.add(s.name);
  }
}

function parseConsensusRelays(text: string): Map<string, string[]> {
  const relays = new Map<string, string[]>();
  let last: string | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('r ')) {
      last = line.split(' ')[1] ?? null;
      if (last) relays.set(last, []);
    } else if (line.startsWith('s ') && last) {
      relays.set(last, line.slice(2).split(' '));
    }
  }
  return relays;
}

export async function startTorNetwork(opts: StartTorNetworkOptions): Promise<TorNetwork> {
  validateServices(opts.services);
  const t0 = Date.now();
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const deadline = t0 + timeoutMs;
  const log = opts.log ?? ((): void => {});
  const ownerPid = opts.ownerPid ?? process.pid;
  // The owner's pid in the name lets a later clean-up (tor-after.ts) remove
  // the folder if this process is killed before it can.
  const dir = opts.dir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), `xop-tor-${process.pid}-`)));
  // Never reuse a folder: old keys and cached consensuses make tor-gencert
  // refuse and leave a client stuck on a stale consensus.
  if ((await fsp.readdir(dir).catch(() => [])).length > 0) throw new Error(`startTorNetwork: ${dir} is not empty`);
  await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
  await fsp.chmod(dir, 0o700);
  const pidFile = path.join(dir, 'tor.pids');

  const children: Array<{ plan: NodePlan; child: ChildProcess; pid: number; exited: boolean; exitInfo?: string }> = [];
  let stopped = false;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const pids = children.map((c) => c.pid);
    await stopTorProcesses(pids, { cmdlineMustContain: dir });
    for (const pid of pids) exitKillList.delete(pid);
    await fsp.rm(dir, { recursive: true, force: true });
    exitRemoveDirs.delete(dir);
  };
  if (!opts.detached) {
    installExitHook();
    exitRemoveDirs.add(dir);
  }

  const allLogTails = (lines = 15): string =>
    children.map((c) => `--- ${c.plan.name} (${c.plan.logFile}) ---\n${tailFile(c.plan.logFile, lines)}`).join('\n');

  try {
    // -------------------------------------------------------------- ports
    const ports = await freePortsBelowEphemeralRange(3 * 2 + 3 + 1 + 3);
    let pi = 0;
    const nextPort = (): number => {
      const p = ports[pi++];
      if (p === undefined) throw new Error('ran out of ports');
      return p;
    };

    const emptyFile = path.join(dir, 'empty-defaults-torrc');
    const resolvConf = path.join(dir, 'resolv.conf');
    await fsp.writeFile(emptyFile, '');
    // Any DNS an exit might attempt stays on loopback (nothing listens there).
    await fsp.writeFile(resolvConf, 'nameserver 127.0.0.1\n');

    const controlPassword = crypto.randomBytes(12).toString('hex');
    const mkPlan = (name: string, role: NodePlan['role'], index: number): NodePlan => {
      const dataDir = path.join(dir, name);
      return {
        name,
        nickname: `xop${name.replace(/[^A-Za-z0-9]/g, '')}`.slice(0, 19) || `xop${index}`,
        role,
        dataDir,
        torrc: path.join(dir, `${name}.torrc`),
        logFile: path.join(dataDir, 'notice.log'),
      };
    };

    const authorities = [0, 1, 2].map((i) => ({ ...mkPlan(`auth${i}`, 'authority', i), orPort: nextPort(), dirPort: nextPort() }));
    const relays = [
      { ...mkPlan('relay0', 'relay', 3), orPort: nextPort() },
      { ...mkPlan('relay1', 'relay', 4), orPort: nextPort() },
      { ...mkPlan('exit0', 'exit', 5), orPort: nextPort() },
    ];
    const hs = { ...mkPlan('onions', 'onion-service', 6), controlPort: nextPort() };
    const client = mkPlan('client', 'client', 7);
    const socksPort = nextPort();
    const plainSocksPort = nextPort();
    const controlPort = nextPort();
    client.controlPort = controlPort;
    for (const p of [...authorities, ...relays, hs, client]) await fsp.mkdir(p.dataDir, { recursive: true, mode: 0o700 });

    // -------------------------------------------------------------- keys
    const tk = Date.now();
    const baseArgs = ['--defaults-torrc', emptyFile, '-f', emptyFile];
    const [hashed] = await Promise.all([
      run(TOR, [...baseArgs, '--quiet', '--hash-password', controlPassword]).then(({ stdout }) => {
        const line = stdout.split('\n').map((l) => l.trim()).find((l) => l.startsWith('16:'));
        if (!line) throw new Error(`tor --hash-password printed no hash: ${stdout}`);
        return line;
      }),
      ...authorities.map(async (a) => {
        const keys = path.join(a.dataDir, 'keys');
        await fsp.mkdir(keys, { recursive: true, mode: 0o700 });
        await run(TOR_GENCERT, [
          '--create-identity-key', '--passphrase-fd', '0', '-m', '12', '-a', `${LOOPBACK}:${a.dirPort}`,
          '-i', path.join(keys, 'authority_identity_key'),
          '-s', path.join(keys, 'authority_signing_key'),
          '-c', path.join(keys, 'authority_certificate'),
        ], '\n');
        const cert = await fsp.readFile(path.join(keys, 'authority_certificate'), 'utf8');
        const m = /^fingerprint ([0-9A-F]{40})$/m.exec(cert);
        if (!m?.[1]) throw new Error(`no fingerprint in ${a.name}'s authority certificate`);
        a.v3ident = m[1];
        // Relay identity key; DisableNetwork so this one-shot tor opens nothing.
        await run(TOR, [
          ...baseArgs, '--list-fingerprint', '--DataDirectory', a.dataDir, '--ORPort', `${LOOPBACK}:${a.orPort}`,
          '--DisableNetwork', '1', '--Log', 'err stderr', '--Nickname', a.nickname, '--ContactInfo', 'test@example.invalid',
        ]);
        const fp = (await fsp.readFile(path.join(a.dataDir, 'fingerprint'), 'utf8')).trim().split(/\s+/)[1];
        if (!fp || !/^[0-9A-F]{40}$/.test(fp)) throw new Error(`no relay fingerprint for ${a.name}`);
        a.fingerprint = fp;
      }),
    ]);
    const keygenMs = Date.now() - tk;

    // -------------------------------------------------------------- torrcs
    const dirAuthorityLines = authorities.map(
      (a) => `DirAuthority ${a.nickname} orport=${a.orPort} no-v2 v3ident=${a.v3ident} ${LOOPBACK}:${a.dirPort} ${a.fingerprint}`,
    );
    const common = (p: NodePlan): string[] => [
      'TestingTorNetwork 1',
      `DataDirectory ${p.dataDir}`,
      'RunAsDaemon 0',
      `Nickname ${p.nickname}`,
      `ContactInfo ${p.nickname} <test@example.invalid>`,
      'ShutdownWaitLength 0',
      `Log notice file ${p.logFile}`,
      ...(opts.infoLog ? [`Log info file ${path.join(p.dataDir, 'info.log')}`] : []),
      'SafeLogging 0',
      'LogTimeGranularity 1',
      `__OwningControllerProcess ${ownerPid}`,
      'NumCPUs 1',
      // Never the public network: only our authorities, no fallbacks.
      'UseDefaultFallbackDirs 0',
      ...dirAuthorityLines,
      'AssumeReachable 1',
      'PathsNeededToBuildCircuits 0.25',
      'TestingDirAuthVoteExit *',
      'TestingDirAuthVoteGuard *',
      // Only the authorities are directory caches (relays have DirCache 0),
      // so only they can be HSDirs.
      `TestingDirAuthVoteHSDir ${authorities.map((a) => `$${a.fingerprint}`).join(',')}`,
      'TestingMinExitFlagThreshold 0',
      'V3AuthNIntervalsValid 2',
      // A client or onion service missing only a few descriptors otherwise
      // batches the request for ~10 s, which holds up every start-up.
      'TestingClientMaxIntervalWithoutRequest 1 second',
      'SocksPort 0',
      'DNSPort 0',
      'TransPort 0',
      'NATDPort 0',
    ];
    const relayLines = (p: NodePlan): string[] => [
      `Address ${LOOPBACK}`,
      `ORPort ${LOOPBACK}:${p.orPort}`,
      ...(p.dirPort ? [`DirPort ${LOOPBACK}:${p.dirPort}`] : []),
      // Every directory fetch goes to an authority, which has every
      // descriptor the moment it publishes a consensus. A relay cache that
      // has the consensus but not yet the descriptors answers 404, and the
      // onion service or client then waits ~10 s before it asks again.
      ...(p.role === 'authority' ? [] : ['DirCache 0']),
      `ServerDNSResolvConfFile ${resolvConf}`,
      'ServerDNSDetectHijacking 0',
      'ServerDNSAllowBrokenConfig 1',
    ];
    // Voting schedule. Authorities vote at once for the next boundary, even
    // when they start too late to have seen the relays' descriptors: with a
    // 5-s first interval the first consensus usually lacks relays, and the
    // next comes 10 s later. A 9-s first interval whose first boundary lies
    // ~7 s after the start (TestingV3AuthVotingStartOffset; boundaries are
    // midnight UTC + offset + k·interval, and 9 divides a day) puts the first
    // vote ~3 s after the start, once every relay has uploaded.
    const initialInterval = 9;
    const votingOffset = (Math.floor(Date.now() / 1000) + 7) % initialInterval;
    const torrcs = new Map<NodePlan, string[]>();
    for (const a of authorities) {
      torrcs.set(a, [
        ...common(a), ...relayLines(a),
        'AuthoritativeDirectory 1',
        'V3AuthoritativeDirectory 1',
        'ExitRelay 0',
        'ExitPolicy reject *:*',
        `TestingV3AuthInitialVotingInterval ${initialInterval}`,
        `TestingV3AuthVotingStartOffset ${votingOffset}`,
        'V3AuthVotingInterval 10',
        'TestingV3AuthInitialVoteDelay 2',
        'V3AuthVoteDelay 2',
        'TestingV3AuthInitialDistDelay 2',
        'V3AuthDistDelay 2',
      ]);
    }
    for (const r of relays) {
      torrcs.set(r, [
        ...common(r), ...relayLines(r),
        ...(r.role === 'exit'
          ? ['ExitRelay 1', 'ExitPolicyRejectPrivate 0', `ExitPolicy accept ${LOOPBACK}:*`, 'ExitPolicy reject *:*']
          : ['ExitRelay 0', 'ExitPolicy reject *:*']),
      ]);
    }
    const hsLines = [...common(hs), `ControlPort ${LOOPBACK}:${hs.controlPort}`, `HashedControlPassword ${hashed}`];
    for (const s of opts.services) {
      hsLines.push(`HiddenServiceDir ${path.join(hs.dataDir, 'hs', s.name)}`);
      hsLines.push(`HiddenServicePort ${s.virtualPort ?? DEFAULT_VIRTUAL_PORT} ${LOOPBACK}:${s.targetPort}`);
      for (const e of s.extraPorts ?? []) hsLines.push(`HiddenServicePort ${e.virtualPort} ${LOOPBACK}:${e.targetPort}`);
    }
    await fsp.mkdir(path.join(hs.dataDir, 'hs'), { recursive: true, mode: 0o700 });
    torrcs.set(hs, hsLines);
    const controlCookieFile = path.join(client.dataDir, 'control_auth_cookie');
    torrcs.set(client, [
      ...common(client).filter((l) => l !== 'SocksPort 0'),
      `SocksPort ${LOOPBACK}:${socksPort} ExtendedErrors`,
      `SocksPort ${LOOPBACK}:${plainSocksPort} IsolateDestAddr IsolateDestPort`,
      `ControlPort ${LOOPBACK}:${controlPort}`,
      `HashedControlPassword ${hashed}`,
      'CookieAuthentication 1',
      `CookieAuthFile ${controlCookieFile}`,
      // TestingTorNetwork already sets this to 0; spelled out because the
      // exit test (a stream to 127.0.0.1 through the exit) depends on it.
      'ClientRejectInternalAddresses 0',
      // Exit policy "accept 127.0.0.1:*, reject *:*" summarises to "reject
      // everything" in a microdescriptor (summaries only cover public
      // addresses), so with microdescriptors the client never finds an exit
      // for 127.0.0.1. Full descriptors carry the real policy.
      'UseMicrodescriptors 0',
    ]);
    for (const [p, lines] of torrcs) await fsp.writeFile(p.torrc, `${lines.join('\n')}\n`);

    // -------------------------------------------------------------- spawn
    const startNode = (p: NodePlan): void => {
      // stdout/stderr go to a file, never to a pipe: a detached tor must not
      // depend on (or hold open) anything of the process that started it.
      const stderrFile = path.join(p.dataDir, 'stderr.log');
      const out = fs.openSync(stderrFile, 'a');
      let child: ChildProcess;
      try {
        child = spawn(TOR, ['--defaults-torrc', emptyFile, '-f', p.torrc], {
          stdio: ['ignore', out, out],
          detached: opts.detached ?? false,
        });
      } finally {
        fs.closeSync(out);
      }
      if (child.pid === undefined) throw new Error(`could not spawn tor for ${p.name}`);
      const entry: (typeof children)[number] = { plan: p, child, pid: child.pid, exited: false };
      children.push(entry);
      fs.appendFileSync(pidFile, `${child.pid}\n`);
      child.on('exit', (code, signal) => {
        entry.exited = true;
        entry.exitInfo = `exited with ${signal ?? code}; stdout/stderr: ${tailFile(stderrFile, 10).trim()}`;
        exitKillList.delete(entry.pid);
      });
      if (opts.detached) {
        child.unref();
      } else {
        installExitHook();
        exitKillList.add(child.pid);
      }
      log(`started ${p.name} pid ${child.pid}`);
    };
    const checkAlive = (): void => {
      const dead = children.find((c) => c.exited || !isAlive(c.pid));
      if (dead && !stopped) {
        throw new Error(`tor node ${dead.plan.name} (pid ${dead.pid}) ${dead.exitInfo ?? 'is gone'}\n${tailFile(dead.plan.logFile, 40)}`);
      }
    };

    for (const p of [...authorities, ...relays]) startNode(p);

    // ------------------------------------- wait for a consensus with every relay
    const consensusFile = path.join(authorities[0]!.dataDir, 'cached-microdesc-consensus');
    const wanted = [...authorities, ...relays];
    await pollUntil('a consensus listing every relay as Running', deadline, 200, async () => {
      checkAlive();
      let text: string;
      try { text = await fsp.readFile(consensusFile, 'utf8'); } catch { return undefined; }
      const relaysIn = parseConsensusRelays(text);
      const ok = wanted.every((p) => {
        const flags = relaysIn.get(p.nickname);
        return flags?.includes('Running') && flags.includes('Valid')
          && (p.role !== 'authority' || flags.includes('HSDir'))
          && (p.role !== 'exit' || flags.includes('Exit'));
      });
      return ok ? true : undefined;
    }, () => allLogTails());
    const consensusMs = Date.now() - t0;
    log(`consensus lists all relays after ${consensusMs} ms`);

    // -------------------------------------------------- onion service + client
    startNode(hs);
    startNode(client);

    const onions: Record<string, string> = {};
    await pollUntil('the onion services\' hostname files', deadline, 100, async () => {
      checkAlive();
      for (const s of opts.services) {
        if (onions[s.name]) continue;
        try {
          const h = (await fsp.readFile(path.join(hs.dataDir, 'hs', s.name, 'hostname'), 'utf8')).trim();
          if (/^[a-z2-7]{56}\.onion$/.test(h)) onions[s.name] = h;
        } catch { /* not yet */ }
      }
      return opts.services.every((s) => onions[s.name]) ? true : undefined;
    }, () => tailFile(hs.logFile, 40));

    // Watch the onion-service instance's descriptor uploads: probing before the
    // first upload only earns 0xF0 replies (and the client then leaves each
    // HSDir alone for 5 s). Should the event be missed (an upload before the
    // subscription), probing starts anyway after a while and simply retries.
    const uploaded = new Set<string>();
    const hsControl = await pollUntil('the onion-service instance\'s control port', deadline, 100, async () => {
      checkAlive();
      try { return await TorControl.connect(hs.controlPort, controlPassword, 2_000); } catch { return undefined; }
    }, () => tailFile(hs.logFile, 40));
    try {
      hsControl.events.push((line) => {
        const m = /^HS_DESC UPLOADED (\S+)/.exec(line);
        if (m?.[1]) uploaded.add(`${m[1]}.onion`);
      });
      const ev = await hsControl.command('SETEVENTS HS_DESC');
      if (ev.status !== 250) throw new Error(`SETEVENTS HS_DESC: ${ev.lines.join(' ')}`);

      const timings: TorNetworkTimings = {
        keygenMs, consensusMs, readyMs: 0, firstConnectMs: {}, probeAttempts: {}, probeFailures: {},
      };
      await Promise.all(opts.services.map(async (s) => {
        const onion = onions[s.name]!;
        const seen = await pollUntil(`the first descriptor upload of ${s.name}`, Math.min(deadline, Date.now() + 20_000), 100, () => {
          checkAlive();
          return uploaded.has(onion) ? true : undefined;
        }).then(() => true, (err: unknown) => {
          if (err instanceof Error && err.message.startsWith('timed out')) return false;
          throw err;
        });
        log(`${s.name}: ${seen ? 'descriptor uploaded' : 'no upload event seen; probing anyway'} after ${Date.now() - t0} ms`);
        await probeOnion(s, onion, socksPort, deadline, timings, checkAlive, log,
          () => `${tailFile(client.logFile, 30)}\n--- onion service ---\n${tailFile(hs.logFile, 30)}`);
      }));
      timings.readyMs = Date.now() - t0;
      log(`network ready after ${timings.readyMs} ms`);

      const nodes: TorNodeInfo[] = children.map((c) => ({
        name: c.plan.name,
        nickname: c.plan.nickname,
        role: c.plan.role,
        pid: c.pid,
        dataDir: c.plan.dataDir,
        logFile: c.plan.logFile,
        ...(c.plan.orPort !== undefined ? { orPort: c.plan.orPort } : {}),
        ...(c.plan.dirPort !== undefined ? { dirPort: c.plan.dirPort } : {}),
        ...(c.plan.controlPort !== undefined ? { controlPort: c.plan.controlPort } : {}),
        ...(c.plan.fingerprint !== undefined ? { fingerprint: c.plan.fingerprint } : {}),
      }));
      const exitFp = (await fsp.readFile(path.join(relays[2]!.dataDir, 'fingerprint'), 'utf8')).trim().split(/\s+/)[1] ?? '';
      return {
        dir,
        socksPort,
        plainSocksPort,
        controlPort,
        controlPassword,
        controlCookieFile,
        onions,
        exitFingerprint: exitFp,
        nodes,
        pids: children.map((c) => c.pid),
        startupMs: timings.readyMs,
        timings,
        rssBytes: () => children.reduce((sum, c) => sum + processRssBytes(c.pid), 0),
        stop,
      };
    } finally {
      hsControl.close();
    }
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    const tails = children.length ? `\n${allLogTails(12)}` : '';
    await stop().catch(() => {});
    e.message = `startTorNetwork failed after ${Date.now() - t0} ms: ${e.message}${e.message.includes('---') ? '' : tails}`;
    throw e;
  }
}

/**
 * Readiness probe: a real SOCKS5 CONNECT to the onion's virtual port through
 * the client's ExtendedErrors SocksPort, until it succeeds. If nothing listens
 * on the target port, a throw-away listener is put there for the probe (so a
 * network whose targets are not up yet can still be proven to work); the
 * probe then also checks that the connection arrived.
 */
async function probeOnion(
  s: OnionServiceSpec,
  onion: string,
  socksPort: number,
  deadline: number,
  timings: TorNetworkTimings,
  checkAlive: () => void,
  log: (line: string) => void,
  describe: () => string,
): Promise<void> {
  const started = Date.now();
  const failures: number[] = [];
  let attempts = 0;
  let arrived = 0;
  const listener = net.createServer((sock) => { arrived++; sock.destroy(); });
  let listenError = '';
  const ownListener = await new Promise<boolean>((resolve) => {
    listener.once('error', (err: NodeJS.ErrnoException) => { listenError = err.code ?? err.message; resolve(false); });
    listener.listen(s.targetPort, LOOPBACK, () => resolve(true));
  });
  if (!ownListener) log(`${s.name}: target 127.0.0.1:${s.targetPort} is taken (${listenError}); probing whatever is there`);
  try {
    let backoff = 250;
    for (;;) {
      checkAlive();
      attempts++;
      const remaining = deadline - Date.now();
      const r = await socks5Connect({
        socksPort, host: onion, port: s.virtualPort ?? DEFAULT_VIRTUAL_PORT,
        timeoutMs: Math.max(1_000, Math.min(30_000, remaining)),
        // A fresh isolation token per attempt: no circuit state carried over.
        username: `probe-${s.name}-${attempts}`, password: 'x',
      });
      if (r.reply === 0) {
        const sock = r.socket!;
        if (ownListener) {
          await pollUntil(`the probe connection to arrive at ${s.name}'s target`, Math.min(deadline, Date.now() + 10_000), 20,
            () => (arrived > 0 ? true : undefined));
        }
        sock.destroy();
        break;
      }
      failures.push(r.reply);
      if (!ownListener && failures.length >= 3 && failures.slice(-3).every((f) => f === 0x01)) {
        throw new Error(`onion ${s.name} (${onion}) is published, but its target 127.0.0.1:${s.targetPort} does not accept `
          + `connections and could not be listened on for the probe (${listenError}): replies 0x01 (onion up, nothing listening)`);
      }
      log(`${s.name}: probe ${attempts} got ${r.reply === -1 ? r.error : `0x${r.reply.toString(16)}`}`);
      if (Date.now() + backoff >= deadline) {
        throw new Error(`onion ${s.name} (${onion}) never accepted a SOCKS CONNECT: replies ${failures.map((f) => (f < 0 ? 'none' : `0x${f.toString(16)}`)).join(', ')}\n${describe()}`);
      }
      await delay(backoff);
      backoff = Math.min(backoff * 2, 2_000);
    }
  } finally {
    if (ownListener) await new Promise<void>((resolve) => listener.close(() => resolve()));
  }
  timings.firstConnectMs[s.name] = Date.now() - started;
  timings.probeAttempts[s.name] = attempts;
  timings.probeFailures[s.name] = failures;
}
