import { readFileSync } from 'node:fs';
import net from 'node:net';
import { formatEndpoint, type Endpoint } from '../../common/endpoint.js';
import type { CheckLine } from '../check-line.js';

export interface TorControlTarget {
  /** Tor's ControlPort (TCP, on this machine). */
  readonly endpoint: Extract<Endpoint, { kind: 'tcp' }>;
  /** A file holding the password whose hash is torrc's HashedControlPassword; without it, AUTHENTICATE with no data. */
  readonly passwordFile?: string;
}

export type BootstrapResult =
  | { readonly ok: true; readonly progress: number; readonly tag: string; readonly summary: string; readonly warning?: string }
  | { readonly ok: false; readonly problem: 'password-file' | 'refused' | 'timeout' | 'closed' | 'not-control' | 'auth' | 'getinfo' | 'error'; readonly detail: string };

interface Reply {
  readonly status: number;
  readonly lines: readonly string[];
}

const ADD_CONTROL_PORT = 'add `ControlPort 9051` and `HashedControlPassword` (the output of `tor --hash-password PASSWORD`) to /etc/tor/torrc and restart tor, or leave out --tor-control';

/**
 * Asks Tor's control port how far it has bootstrapped (control-spec: AUTHENTICATE, then
 * `GETINFO status/bootstrap-phase`, then QUIT), within `timeoutMs` for the whole exchange. The
 * password is sent hex-encoded and never appears in the result: whatever Tor answers is shown
 * with any copy of it blanked out.
 */
export async function torBootstrapPhase(target: TorControlTarget, timeoutMs = 5000): Promise<BootstrapResult> {
  let password: Buffer | undefined;
  if (target.passwordFile !== undefined) {
    try {
      password = readFileSync(target.passwordFile);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      const words = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read (permission denied)' : `cannot be read (${code})`;
      return { ok: false, problem: 'password-file', detail: `the password file ${target.passwordFile} ${words}` };
    }
    password = stripLineEnd(password);
    if (password.length === 0) return { ok: false, problem: 'password-file', detail: `the password file ${target.passwordFile} is empty` };
  }
  const result = await exchange(target.endpoint, password, timeoutMs);
  if (password === undefined) return result;
  const secret = password;
  const clean = (text: string): string => redact(text, secret);
  if (!result.ok) return { ...result, detail: clean(result.detail) };
  return { ...result, tag: clean(result.tag), summary: clean(result.summary), ...(result.warning !== undefined ? { warning: clean(result.warning) } : {}) };
}

/** The doctor's line for Tor's bootstrap, read from its control port. */
export async function checkTorBootstrap(target: TorControlTarget, timeoutMs?: number): Promise<CheckLine> {
  const where = `Tor's control port ${formatEndpoint(target.endpoint)}`;
  const result = await torBootstrapPhase(target, timeoutMs);
  if (result.ok) {
    if (result.progress >= 100) return { status: 'ok', text: `${where}: Tor has bootstrapped (100%: ${result.summary})` };
    return {
      status: 'fail',
      text: `${where}: Tor has not finished bootstrapping: ${result.progress}% (${result.summary})${result.warning ? `; Tor warns: ${result.warning}` : ''}`,
      fix: 'wait a minute and run doctor again; if it stays stuck, check the clock and the network connection, and Tor\'s log (Debian: `journalctl -u tor@default`)',
    };
  }
  switch (result.problem) {
    case 'password-file':
      return { status: 'fail', text: `${where}: ${result.detail}`, fix: 'give --tor-control-password-file a file (mode 0600) holding the control password on one line' };
    case 'refused':
      return { status: 'fail', text: `${where}: nothing listens there (connection refused)`, fix: ADD_CONTROL_PORT };
    case 'auth':
      return {
        status: 'fail',
        text: `${where}: Tor did not accept ${target.passwordFile !== undefined ? 'the password' : 'a connection without a password'} (${result.detail})`,
        fix: target.passwordFile !== undefined
          ? 'put in --tor-control-password-file the password whose hash (`tor --hash-password`) is HashedControlPassword in torrc'
          : 'give --tor-control-password-file a file holding the control password (torrc: HashedControlPassword)',
      };
    case 'not-control':
    case 'closed':
      return { status: 'fail', text: `${where}: ${result.detail}`, fix: `give --tor-control Tor's ControlPort (torrc: ControlPort, usually 127.0.0.1:9051)` };
    default:
      return { status: 'fail', text: `${where}: ${result.detail}`, fix: `check that Tor (and not something else) listens on ${formatEndpoint(target.endpoint)}, or ${ADD_CONTROL_PORT}` };
  }
}

function exchange(endpoint: TorControlTarget['endpoint'], password: Buffer | undefined, timeoutMs: number): Promise<BootstrapResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: endpoint.host, port: endpoint.port });
    const reader = new ReplyReader();
    let waiting: ((reply: Reply) => void) | undefined;
    let settled = false;
    const done = (result: BootstrapResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (result.ok && socket.writable) {
        // Say goodbye; Tor answers `250 closing connection` and closes. Never kept waiting for it.
        socket.end('QUIT\r\n');
        socket.unref();
        setTimeout(() => socket.destroy(), 1000).unref();
      } else {
        socket.destroy();
      }
      resolve(result);
    };
    const timer = setTimeout(() => done({ ok: false, problem: 'timeout', detail: `no answer within ${timeoutMs / 1000} s` }), timeoutMs);
    const ask = (command: string, then: (reply: Reply) => void): void => {
      waiting = then;
      socket.write(`${command}\r\n`);
    };
    socket.on('data', (chunk: Buffer) => {
      const replies = reader.feed(chunk);
      if (replies === 'garbled') {
        done({ ok: false, problem: 'not-control', detail: 'it did not answer as a Tor control port' });
        return;
      }
      for (const reply of replies) {
        const then = waiting;
        waiting = undefined;
        if (!then) return done({ ok: false, problem: 'not-control', detail: 'it spoke before it was asked: not a Tor control port' });
        then(reply);
      }
    });
    socket.once('connect', () => {
      ask(password === undefined ? 'AUTHENTICATE' : `AUTHENTICATE ${password.toString('hex').toUpperCase()}`, (auth) => {
        if (auth.status !== 250) return done({ ok: false, problem: 'auth', detail: describe(auth) });
        ask('GETINFO status/bootstrap-phase', (info) => {
          if (info.status !== 250) return done({ ok: false, problem: 'getinfo', detail: `Tor did not tell its bootstrap phase (${describe(info)})` });
          done(parsePhase(info));
        });
      });
    });
    socket.once('end', () => done({ ok: false, problem: 'closed', detail: 'it closed the connection without answering as a Tor control port' }));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      done(error.code === 'ECONNREFUSED' ? { ok: false, problem: 'refused', detail: 'connection refused' } : { ok: false, problem: 'error', detail: error.code ?? error.message });
    });
  });
}

/** `status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"` (control-spec §4.1.10). */
function parsePhase(reply: Reply): BootstrapResult {
  const line = reply.lines.find((l) => l.startsWith('status/bootstrap-phase='));
  const fields = new Map<string, string>();
  for (const match of (line ?? '').matchAll(/([A-Z]+)=("(?:[^"\\]|\\.)*"|\S+)/g)) {
    const value = match[2]!;
    fields.set(match[1]!, value.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value);
  }
  const progress = Number(fields.get('PROGRESS'));
  if (!line || !Number.isInteger(progress)) return { ok: false, problem: 'getinfo', detail: `Tor's answer names no bootstrap progress (${printable(line ?? reply.lines.join(' '))})` };
  const warning = fields.get('WARNING');
  return {
    ok: true,
    progress,
    tag: printable(fields.get('TAG') ?? '?'),
    summary: printable(fields.get('SUMMARY') ?? fields.get('TAG') ?? '?'),
    ...(warning !== undefined ? { warning: printable(warning) } : {}),
  };
}

/** Reads control-port replies: `NNN-` mid lines, `NNN+` data blocks ending in `.`, `NNN ` the end line. */
class ReplyReader {
  #buffer = '';
  #lines: string[] = [];
  #inData = false;

  feed(chunk: Buffer): Reply[] | 'garbled' {
    this.#buffer += chunk.toString('latin1');
    if (this.#buffer.length > 65536) return 'garbled';
    const replies: Reply[] = [];
    let end: number;
    while ((end = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, end).replace(/\r$/, '');
      this.#buffer = this.#buffer.slice(end + 1);
      if (this.#inData) {
        if (line === '.') this.#inData = false;
        else this.#lines.push(line);
        continue;
      }
      const match = /^(\d{3})([ +-])(.*)$/.exec(line);
      if (!match) return 'garbled';
      const status = Number(match[1]);
      if (status === 650) continue; // an asynchronous event: never asked for, but harmless
      this.#lines.push(match[3]!);
      if (match[2] === '+') this.#inData = true;
      if (match[2] === ' ') {
        replies.push({ status, lines: this.#lines });
        this.#lines = [];
      }
    }
    if (replies.length === 0 && this.#lines.length === 0 && !this.#inData && this.#buffer.length >= 4 && !/^\d{3}[ +-]/.test(this.#buffer)) return 'garbled';
    return replies;
  }
}

function describe(reply: Reply): string {
  return printable(`${reply.status} ${reply.lines.join(' ')}`.trim());
}

/** At most one short line of plain text: what a server says is shown, never its control characters. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  const plain = text.replace(/[\x00-\x1f\x7f-\x9f]/g, ' ');
  return plain.length > 200 ? `${plain.slice(0, 200)}…` : plain;
}

function stripLineEnd(data: Buffer): Buffer {
  let end = data.length;
  while (end > 0 && (data[end - 1] === 0x0a || data[end - 1] === 0x0d)) end--;
  return data.subarray(0, end);
}

/** Blanks out the password (as text and as the hex that was sent) wherever a server repeated it. */
function redact(text: string, password: Buffer): string {
  let out = text;
  for (const secret of [password.toString('latin1'), password.toString('utf8'), password.toString('hex'), password.toString('hex').toUpperCase()]) {
    if (secret.length > 0) out = out.split(secret).join('[password]');
  }
  return out;
}
