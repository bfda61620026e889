/**
 * A real Prosody 0.12 (Debian package `prosody`) for end-to-end tests, confined to a
 * private temp folder and to 127.0.0.1.
 *
 *   const p = await startProsody({ users: [['alice', pw1], ['bob', pw2]] });
 *   t.teardown(() => p.stop());
 *
 * What the generated configuration does, and why (checked on Debian 12, Prosody 0.12.3):
 * - every listener is on 127.0.0.1 only: `c2s_ports` (STARTTLS, required), optionally
 *   `c2s_direct_tls_ports`; `s2s_ports`, `s2s_direct_tls_ports`, `legacy_ssl_ports`,
 *   `component_ports`, `http(s)_ports` are empty tables (an empty table really means
 *   "no port" to portmanager; only a missing option falls back to the default port).
 * - s2s, s2s_auth_certs, s2s_bidi and dialback are disabled: s2s is auto-loaded by
 *   modulemanager and is the only part that would resolve names (SRV/A for remote
 *   domains) or listen on 5269. Checked with strace: start-up, logins, messages and MUC
 *   make no connect()/sendto() other than the clients' loopback sockets, and read no
 *   /etc/resolv.conf. Without lua-unbound Prosody prints a banner about it on stdout;
 *   it is harmless (the legacy resolver is loaded, never used).
 * - no http, bosh, websocket, proxy65, admin socket/telnet or registration modules.
 * - one certificate (SANs: domain, conference.domain, *.domain) serves every host and
 *   is also the global `ssl`, which the direct-TLS port uses when a client sends no SNI.
 */
import { spawn, execFile, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, existsSync, fstatSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createTestPki } from './certs.js';
import { freePorts } from './ports.js';

export interface ProsodyOptions {
  /** Default 'example.test'. */
  domain?: string;
  /** [user, password] pairs registered with prosodyctl before start. */
  users?: Array<[string, string]>;
  /** Default true: a MUC component `conference.<domain>` with muc_room_locking = false. */
  muc?: boolean;
  /** Also listen for XEP-0368 direct TLS (`c2s_direct_tls_ports`). */
  directTls?: boolean;
  /** Prosody's log level to the log file. Default 'debug' (stanza names only, never payloads). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Bound on the start-up wait. Default 20 s. */
  startTimeoutMs?: number;
  /** Listen on these ports (e.g. an onion service's targets) instead of free ones. */
  ports?: { c2s: number; directTls?: number };
  /** HTTP upload (XEP-0363, mod_http_file_share) as `upload.<domain>`, served on an HTTPS and an HTTP port. */
  httpUpload?: boolean;
}

export interface Prosody {
  domain: string;
  /** `conference.<domain>` when the MUC component is on. */
  mucDomain?: string;
  /** STARTTLS c2s port on 127.0.0.1. */
  c2sPort: number;
  /** Direct TLS c2s port on 127.0.0.1, when asked for. */
  directTlsPort?: number;
  /** With `httpUpload`: the upload component's name and Prosody's HTTPS and HTTP ports on 127.0.0.1. */
  upload?: { domain: string; httpsPort: number; httpPort: number };
  caCertPath: string;
  caCert: string;
  /** The private temp folder (config, data, certs, pid, log). Removed by stop(). */
  dir: string;
  configPath: string;
  logPath: string;
  pid: number;
  /** Last lines of Prosody's log file and of its stdout/stderr, for error messages. */
  logTail(lines?: number): string;
  /** SIGTERM, SIGKILL after a bound, wait for exit, remove `dir`. Idempotent. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// Child processes tied to this test process.

const liveChildren = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Runs on normal exit and on uncaught exceptions (not on fatal signals: the
  // parent-death signal below covers those).
  process.on('exit', () => {
    for (const child of liveChildren) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of liveDirs) {
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  });
}

function onPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const candidate = path.join(dir || '.', command);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

const setpriv = onPath('setpriv');

/**
 * spawn(), but the child is killed if this process goes away without stopping it:
 * SIGKILL from a process 'exit' hook, and — when util-linux `setpriv` is there, as on
 * Debian — a parent-death signal (`setpriv --pdeathsig KILL`, which then exec()s the
 * command, so `child.pid` is the command's own pid) that also covers this process being
 * killed by a signal (e.g. tap's timeout), where no JavaScript runs.
 */
export function spawnTied(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  installExitHook();
  const child = setpriv
    ? spawn(setpriv, ['--pdeathsig', 'KILL', '--', command, ...args], options)
    : spawn(command, args, options);
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  child.once('error', () => liveChildren.delete(child));
  return child;
}

/** Resolves when the child has exited (at once if it already has). Never rejects. */
export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    const done = (): void => resolve({ code: child.exitCode, signal: child.signalCode });
    child.once('exit', done);
    child.once('error', done); // spawn failure: no 'exit' will follow
  });
}

/** SIGTERM, then SIGKILL if the child is still there after `graceMs`; resolves on exit. */
export async function terminate(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const gone = exited(child);
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = await Promise.race([
    gone.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (late) {
    child.kill('SIGKILL');
    await gone;
  }
}

/** Keeps the last `max` characters written to a stream. */
export class TailBuffer {
  #text = '';
  constructor(private readonly max = 16_384) {}
  push(chunk: Buffer | string): void {
    this.#text = (this.#text + chunk.toString()).slice(-this.max);
  }
  get text(): string {
    return this.#text;
  }
}

// ---------------------------------------------------------------------------------------
// Probing a c2s port.

export interface StreamFeaturesOptions {
  host?: string;
  timeoutMs?: number;
}

/**
 * Opens a plain TCP connection to a c2s port, sends a client stream header for `domain`
 * and returns everything the server sent up to and including its first
 * `</stream:features>` (or a stream error / the connection closing). Rejects on
 * connection errors and after `timeoutMs` (default 2 s).
 */
export function readStreamFeatures(port: number, domain: string, opts: StreamFeaturesOptions = {}): Promise<string> {
  const host = opts.host ?? '127.0.0.1';
  const timeoutMs = opts.timeoutMs ?? 2000;
  return new Promise((resolve, reject) => {
    let received = '';
    let settled = false;
    const socket = net.connect({ host, port });
    const finish = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        socket.destroy();
        reject(err);
        return;
      }
      // Close our side of the stream politely so the server logs no error.
      socket.end('</stream:stream>');
      socket.setTimeout(500, () => socket.destroy());
      resolve(received);
    };
    const timer = setTimeout(
      () => finish(new Error(`no stream features from ${host}:${port} within ${timeoutMs} ms; got ${JSON.stringify(received.slice(0, 500))}`)),
      timeoutMs,
    );
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      socket.write(
        `<?xml version='1.0'?><stream:stream to='${domain}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`,
      );
    });
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (/<\/stream:features>|<stream:features\s*\/>|<\/stream:error>|<\/stream:stream>/.test(received)) finish(null);
    });
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(received ? null : new Error(`${host}:${port} closed the connection without a word`)));
  });
}

// ---------------------------------------------------------------------------------------
// Prosody itself.

const DOMAIN_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/;
const USER_RE = /^[a-z0-9._-]+$/;

function lua(value: string): string {
  if ([...value].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) throw new Error(`refusing to put a control character into the Prosody config: ${JSON.stringify(value)}`);
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function luaPorts(ports: number[]): string {
  return `{ ${ports.join(', ')} }`;
}

function tailOfFile(file: string, lines: number): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const length = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    return buf.toString('utf8').split('\n').slice(-lines - 1).join('\n').trimEnd();
  } catch (err) {
    return `(no log: ${(err as Error).message})`;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

interface ConfigInput {
  dir: string;
  domain: string;
  mucDomain?: string;
  c2sPort: number;
  directTlsPort?: number;
  upload?: { domain: string; httpsPort: number; httpPort: number };
  certPath: string;
  keyPath: string;
  logPath: string;
  pidPath: string;
  dataPath: string;
  logLevel: string;
}

function prosodyConfig(c: ConfigInput): string {
  const ssl = `{ certificate = ${lua(c.certPath)}; key = ${lua(c.keyPath)}; }`;
  const lines = [
    '-- Generated by test/helpers/prosody.ts for one test run; removed when the test stops.',
    'run_as_root = true -- the tests run as root',
    'daemonize = false',
    `pidfile = ${lua(c.pidPath)}`,
    `data_path = ${lua(c.dataPath)}`,
    'plugin_paths = { }',
    `certificates = ${lua(path.join(c.dir, 'certs'))}`,
    '',
    '-- Loopback only, IPv4 only; every service not used here gets no port at all.',
    'use_ipv6 = false',
    'interfaces = { "127.0.0.1" }',
    'local_interfaces = { "127.0.0.1" }',
    `c2s_ports = ${luaPorts([c.c2sPort])}`,
    `c2s_direct_tls_ports = ${luaPorts(c.directTlsPort === undefined ? [] : [c.directTlsPort])}`,
    'legacy_ssl_ports = { }',
    's2s_ports = { }',
    's2s_direct_tls_ports = { }',
    'component_ports = { }',
    `http_ports = ${luaPorts(c.upload ? [c.upload.httpPort] : [])}`,
    `https_ports = ${luaPorts(c.upload ? [c.upload.httpsPort] : [])}`,
    'http_interfaces = { "127.0.0.1" }',
    'https_interfaces = { "127.0.0.1" }',
    `https_ssl = ${ssl}`,
    'proxy65_ports = { }',
    '',
    'c2s_require_encryption = true',
    's2s_require_encryption = true',
    'authentication = "internal_hashed"',
    'storage = "internal"',
    'allow_registration = false',
    '',
    '-- Only what clients in the tests need. posix is auto-loaded anyway (pidfile, signals).',
    'modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "posix"; }',
    '-- s2s is auto-loaded and is what would do DNS (SRV/A) and listen on 5269.',
    `modules_disabled = { "s2s"; "s2s_auth_certs"; "s2s_bidi"; "dialback"; "admin_socket"; "admin_telnet"; ${c.upload ? '' : '"http"; '}"bosh"; "websocket"; "register"; "register_ibr"; "proxy65"; }`,
    '',
    `log = { { levels = { min = ${lua(c.logLevel)} }; to = "file"; filename = ${lua(c.logPath)}; } }`,
    '',
    `ssl = ${ssl}`,
    '',
    `VirtualHost ${lua(c.domain)}`,
    `  ssl = ${ssl}`,
  ];
  if (c.mucDomain !== undefined) {
    lines.push(
      '',
      `Component ${lua(c.mucDomain)} "muc"`,
      `  ssl = ${ssl}`,
      '  muc_room_locking = false -- no configuration form on a first join',
      '  restrict_room_creation = false',
    );
  }
  if (c.upload !== undefined) {
    lines.push(
      '',
      `Component ${lua(c.upload.domain)} "http_file_share"`,
      `  ssl = ${ssl}`,
      '  http_file_share_size_limit = 1048576',
    );
  }
  return `${lines.join('\n')}\n`;
}

function run(
  command: string,
  args: string[],
  redact: string[],
  timeoutMs: number,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      let output = `${stdout}${stderr}`;
      for (const secret of redact) if (secret) output = output.split(secret).join('[redacted]');
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, output });
    });
  });
}

/** Prosody's "lua-unbound is missing" banner, which prosody and prosodyctl print on every start. */
function withoutBanner(text: string): string {
  return text.replace(/\n?\*{26}\nProsody was unable to find lua-unbound[\s\S]*?\*{26}\n?/g, '\n').trim();
}

async function registerUsers(configPath: string, domain: string, users: Array<[string, string]>): Promise<void> {
  for (const [user, password] of users) {
    if (!USER_RE.test(user)) throw new Error(`startProsody: user name ${JSON.stringify(user)} must match ${USER_RE}`);
    if (password === '') throw new Error(`startProsody: empty password for ${user}`);
    // Sequential: prosodyctl writes the accounts store directly (the server is not up yet).
    const { code, output } = await run('prosodyctl', ['--config', configPath, 'register', user, domain, password], [password], 20_000);
    if (code !== 0) {
      throw new Error(`prosodyctl register ${user} ${domain} [password] failed (exit ${code}): ${withoutBanner(output)}`);
    }
  }
}

const DIR_PREFIX = 'xop-prosody-';
const STALE_MS = 60 * 60 * 1000;

/**
 * Temp folders of test processes that were killed by a signal (their Prosody died with
 * them, but no JavaScript ran to remove the folder): removed when older than an hour
 * and their Prosody (pidfile) is not running.
 */
function sweepStaleDirs(): void {
  const tmp = os.tmpdir();
  let names: string[];
  try {
    names = readdirSync(tmp).filter((n) => n.startsWith(DIR_PREFIX));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = path.join(tmp, name);
    try {
      if (Date.now() - statSync(dir).mtimeMs < STALE_MS) continue;
      let alive = false;
      try {
        const pid = Number(readFileSync(path.join(dir, 'prosody.pid'), 'utf8').trim());
        if (Number.isInteger(pid) && pid > 0) {
          process.kill(pid, 0);
          alive = true;
        }
      } catch {
        // no pidfile, or no such process
      }
      if (!alive) rmSync(dir, { recursive: true, force: true });
    } catch {
      // someone else's business
    }
  }
}

const PORT_CLASH_RE = /Failed to open server port|address already in use/i;

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Starts a private Prosody on 127.0.0.1 and resolves once its c2s port offers STARTTLS. */
export async function startProsody(opts: ProsodyOptions = {}): Promise<Prosody> {
  const domain = opts.domain ?? 'example.test';
  if (!DOMAIN_RE.test(domain)) throw new Error(`startProsody: domain ${JSON.stringify(domain)} is not a plain lower-case DNS name`);
  const mucDomain = (opts.muc ?? true) ? `conference.${domain}` : undefined;
  const users = opts.users ?? [];
  const startTimeoutMs = opts.startTimeoutMs ?? 20_000;
  const deadline = Date.now() + startTimeoutMs;

  installExitHook();
  sweepStaleDirs();
  const dir = mkdtempSync(path.join(os.tmpdir(), DIR_PREFIX));
  liveDirs.add(dir);
  try {
    const certDir = path.join(dir, 'certs');
    const dataPath = path.join(dir, 'data');
    await mkdir(dataPath, { recursive: true });
    const names = [domain, ...(mucDomain ? [mucDomain] : []), `*.${domain}`];
    const pki = await createTestPki(certDir, names);
    const configPath = path.join(dir, 'prosody.cfg.lua');
    const logPath = path.join(dir, 'prosody.log');
    const pidPath = path.join(dir, 'prosody.pid');

    // A port picked by freePorts() can be taken before Prosody binds it (other tests run
    // in parallel): Prosody then logs "Failed to open server port" and carries on. Detect
    // that and start again with fresh ports, a few times.
    for (let attempt = 1; ; attempt++) {
      const [c2sPort, directPort] = opts.ports ? [opts.ports.c2s, opts.ports.directTls] : await freePorts(opts.directTls ? 2 : 1);
      if (c2sPort === undefined) throw new Error('freePorts returned nothing');
      const directTlsPort = opts.directTls ? directPort : undefined;
      const [httpsPort, httpPort] = opts.httpUpload ? await freePorts(2) : [];
      const upload = httpsPort !== undefined && httpPort !== undefined ? { domain: `upload.${domain}`, httpsPort, httpPort } : undefined;
      await writeFile(
        configPath,
        prosodyConfig({
          dir, domain, c2sPort, certPath: pki.serverCertPath, keyPath: pki.serverKeyPath,
          logPath, pidPath, dataPath, logLevel: opts.logLevel ?? 'debug',
          ...(mucDomain !== undefined ? { mucDomain } : {}),
          ...(directTlsPort !== undefined ? { directTlsPort } : {}),
          ...(upload !== undefined ? { upload } : {}),
        }),
      );
      if (attempt === 1) await registerUsers(configPath, domain, users);
      await rm(logPath, { force: true });

      const output = new TailBuffer();
      const child = spawnTied('prosody', ['--config', configPath, '-F'], {
        cwd: dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child.stdout?.on('data', (d: Buffer) => output.push(d));
      child.stderr?.on('data', (d: Buffer) => output.push(d));
      let spawnError: Error | undefined;
      child.once('error', (err) => {
        spawnError = err;
      });

      const logTail = (lines = 30): string => {
        const out = withoutBanner(output.text);
        return [
          `--- last lines of ${logPath} ---`,
          tailOfFile(logPath, lines),
          ...(out ? ['--- prosody stdout/stderr ---', out.split('\n').slice(-lines).join('\n')] : []),
        ].join('\n');
      };

      let stopping: Promise<void> | undefined;
      const stop = (): Promise<void> => {
        stopping ??= (async () => {
          await terminate(child, 5000);
          liveDirs.delete(dir);
          await rm(dir, { recursive: true, force: true });
        })();
        return stopping;
      };

      // Wait, without sleeping blindly: each round either learns something (the process
      // died, the log reports a port clash, the port answers) or retries a refused
      // connection after a short pause; the whole wait is bounded by the deadline.
      const logLevel = opts.logLevel ?? 'debug';
      const logShowsOurPorts = (log: string): boolean =>
        // 'Activated service …' is logged at info level; with a quieter log, trust the probe.
        (logLevel !== 'debug' && logLevel !== 'info') ||
        (log.includes(`Activated service 'c2s' on [127.0.0.1]:${c2sPort}`) &&
          (directTlsPort === undefined || log.includes(`Activated service 'c2s_direct_tls' on [127.0.0.1]:${directTlsPort}`)) &&
          (upload === undefined || log.includes(`Activated service 'https' on [127.0.0.1]:${upload.httpsPort}`)));
      let clash = false;
      let lastError = '(no probe yet)';
      for (;;) {
        if (spawnError) {
          await stop();
          throw new Error(`could not run prosody: ${spawnError.message}`);
        }
        if (child.exitCode !== null || child.signalCode !== null) {
          const tail = logTail();
          await stop();
          throw new Error(`prosody exited during start-up (code ${child.exitCode}, signal ${child.signalCode})\n${tail}`);
        }
        if (PORT_CLASH_RE.test(readLog(logPath))) {
          clash = true;
          break;
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          const tail = logTail();
          await stop();
          throw new Error(
            `prosody did not offer <starttls> on 127.0.0.1:${c2sPort} within ${startTimeoutMs} ms (last probe: ${lastError})\n${tail}`,
          );
        }
        try {
          const features = await readStreamFeatures(c2sPort, domain, { timeoutMs: Math.min(2000, remaining) });
          if (!features.includes('<starttls')) {
            lastError = `features without <starttls>: ${features.slice(0, 300)}`;
          } else if (!logShowsOurPorts(readLog(logPath))) {
            // Something answered, but our Prosody has not logged binding the ports (yet):
            // it might be another test's server on a port we were too late for.
            lastError = 'the port answered before the log showed Prosody binding it';
          } else {
            break;
          }
        } catch (err) {
          lastError = (err as Error).message;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      if (clash) {
        const tail = logTail(10);
        await terminate(child, 5000);
        if (attempt >= 3 || Date.now() >= deadline) {
          await stop();
          throw new Error(`prosody could not bind its ports after ${attempt} attempts\n${tail}`);
        }
        continue;
      }

      if (child.pid === undefined) throw new Error('prosody has no pid');
      return {
        domain,
        ...(mucDomain !== undefined ? { mucDomain } : {}),
        c2sPort,
        ...(directTlsPort !== undefined ? { directTlsPort } : {}),
        ...(upload !== undefined ? { upload } : {}),
        caCertPath: pki.caCertPath,
        caCert: pki.caCert,
        dir,
        configPath,
        logPath,
        pid: child.pid,
        logTail,
        stop,
      };
    }
  } catch (err) {
    liveDirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
