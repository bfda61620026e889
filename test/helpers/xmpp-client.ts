/**
 * Runs test/fixtures/xmpp-client.mjs (a real @xmpp/client 0.14) as a child process that
 * trusts the test CA through NODE_EXTRA_CA_CERTS. See the fixture for the job format,
 * the events and which certificate name @xmpp/client checks.
 *
 *   const r = await runXmppClient({ service, domain, username, password, actions }, { caCertPath });
 *   const bob = startXmppClient(job, { caCertPath }); t.teardown(() => bob.stop());
 *   await bob.waitFor('online'); … const m = await bob.waitFor('message');
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { exited, spawnTied, TailBuffer, terminate } from './prosody.js';

export type XmppAction =
  | { do: 'send'; to: string; body: string; type?: 'chat' | 'normal' | 'headline' }
  | { do: 'receive'; count?: number; from?: string }
  | { do: 'join'; room: string }
  | { do: 'groupchat'; room: string; body: string };

export interface XmppJob {
  /** 'xmpp://127.0.0.1:PORT' (STARTTLS) or 'xmpps://127.0.0.1:PORT' (direct TLS). */
  service: string;
  domain: string;
  username: string;
  password: string;
  resource?: string;
  /** The script's own overall timeout; defaults to the helper's timeout minus 1 s. */
  timeoutMs?: number;
  /** Wire traffic (SASL redacted) on stderr. */
  debug?: boolean;
  actions: XmppAction[];
}

export interface XmppEvent {
  event: 'online' | 'sent' | 'message' | 'joined' | 'groupchat' | 'done' | 'error' | 'unparsed';
  [key: string]: unknown;
}

export interface XmppClientOptions {
  /** PEM file the client must trust; becomes NODE_EXTRA_CA_CERTS (any inherited value is replaced). */
  caCertPath: string;
  /** Kill the client (SIGKILL) after this long. Default 30 s. */
  timeoutMs?: number;
  /** Extra environment for the child, applied last. */
  env?: Record<string, string>;
}

export interface XmppClientResult {
  /** Exit code; null if the client was killed (see `signal`). */
  code: number | null;
  signal: NodeJS.Signals | null;
  events: XmppEvent[];
  stderr: string;
}

const SCRIPT = fileURLToPath(new URL('../fixtures/xmpp-client.mjs', import.meta.url));
const DEFAULT_TIMEOUT_MS = 30_000;

/** The environment for a client child: inherited, minus anything that could change what it trusts or where it connects. */
export function clientEnv(caCertPath: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) {
    if (
      /^(NODE_OPTIONS|NODE_TLS_REJECT_UNAUTHORIZED|NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|SSL_CERT_DIR)$/.test(name) ||
      /^(https?|all|no|ftp)_proxy$/i.test(name)
    ) {
      delete env[name];
    }
  }
  env.NODE_EXTRA_CA_CERTS = caCertPath;
  return { ...env, ...extra };
}

export interface XmppClientProcess {
  child: ChildProcess;
  /** Every event so far, in order. */
  readonly events: readonly XmppEvent[];
  stderr(): string;
  /**
   * The next event of this kind not yet returned by waitFor (events seen before the call
   * count). Rejects when the client reports an error, exits first, or after `timeoutMs`
   * (default: the client's own timeout).
   */
  waitFor(event: XmppEvent['event'], timeoutMs?: number): Promise<XmppEvent>;
  /** All events, including those already seen, then those still to come, until exit. */
  [Symbol.asyncIterator](): AsyncIterator<XmppEvent>;
  /** Resolves when the client exits by itself (or is stopped). */
  result: Promise<XmppClientResult>;
  /** Kill the client (SIGTERM, SIGKILL after 2 s) and wait for it. Idempotent. */
  stop(): Promise<void>;
}

/** Starts the client and returns at once; use waitFor() or iterate over the events. */
export function startXmppClient(job: XmppJob, opts: XmppClientOptions): XmppClientProcess {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const fullJob: XmppJob = { ...job, timeoutMs: job.timeoutMs ?? Math.max(1000, timeoutMs - 1000) };
  const child = spawnTied(process.execPath, [SCRIPT, JSON.stringify(fullJob)], {
    env: clientEnv(opts.caCertPath, opts.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  const events: XmppEvent[] = [];
  const stderr = new TailBuffer(64 * 1024);
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const l of [...listeners]) l();
  };
  let pending = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) !== -1) {
      const line = pending.slice(0, nl).trim();
      pending = pending.slice(nl + 1);
      if (!line) continue;
      try {
        events.push(JSON.parse(line) as XmppEvent);
      } catch {
        events.push({ event: 'unparsed', line });
      }
    }
    notify();
  });
  child.stderr?.on('data', (d: Buffer) => stderr.push(d));

  let killedForTime = false;
  const killer = setTimeout(() => {
    killedForTime = true;
    child.kill('SIGKILL');
  }, timeoutMs);

  let done = false;
  const result = (async (): Promise<XmppClientResult> => {
    const [{ code, signal }] = await Promise.all([
      exited(child),
      // Let stdout drain so no event is lost.
      new Promise<void>((resolve) => (child.stdout ? child.stdout.once('close', resolve) : resolve())),
    ]);
    clearTimeout(killer);
    done = true;
    if (killedForTime) stderr.push(`\n[xmpp-client helper] killed after ${timeoutMs} ms\n`);
    notify();
    return { code, signal, events: [...events], stderr: stderr.text };
  })();

  const describe = (): string =>
    `events so far: ${JSON.stringify(events)}; exit: ${child.exitCode ?? child.signalCode ?? 'still running'}; stderr: ${stderr.text.slice(-2000) || '(empty)'}`;

  const cursors = new Map<string, number>();
  const waitFor = (event: XmppEvent['event'], waitMs = timeoutMs): Promise<XmppEvent> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const from = cursors.get(event) ?? 0;
        const i = events.findIndex((e, idx) => idx >= from && e.event === event);
        if (i !== -1) {
          cursors.set(event, i + 1);
          return settle(() => resolve(events[i] as XmppEvent));
        }
        const error = events.find((e) => e.event === 'error');
        if (error && event !== 'error') {
          return settle(() => reject(new Error(`xmpp-client ${job.username}: error while waiting for "${event}": ${String(error.message)}; ${describe()}`)));
        }
        if (done) {
          return settle(() => reject(new Error(`xmpp-client ${job.username} exited before "${event}"; ${describe()}`)));
        }
      };
      const timer = setTimeout(
        () => settle(() => reject(new Error(`xmpp-client ${job.username}: no "${event}" within ${waitMs} ms; ${describe()}`))),
        waitMs,
      );
      const settle = (fn: () => void): void => {
        clearTimeout(timer);
        listeners.delete(check);
        fn();
      };
      listeners.add(check);
      check();
    });

  async function* iterate(): AsyncGenerator<XmppEvent> {
    let next = 0;
    for (;;) {
      while (next < events.length) yield events[next++] as XmppEvent;
      if (done) return;
      await new Promise<void>((resolve) => {
        const l = (): void => {
          listeners.delete(l);
          resolve();
        };
        listeners.add(l);
      });
    }
  }

  let stopping: Promise<void> | undefined;
  return {
    child,
    events,
    stderr: () => stderr.text,
    waitFor,
    [Symbol.asyncIterator]: iterate,
    result,
    stop: () => {
      stopping ??= (async () => {
        clearTimeout(killer);
        await terminate(child, 2000);
        await result;
      })();
      return stopping;
    },
  };
}

/** Runs the client to completion (or kills it after `timeoutMs`) and returns its events. */
export async function runXmppClient(job: XmppJob, opts: XmppClientOptions): Promise<XmppClientResult> {
  return startXmppClient(job, opts).result;
}
