/**
 * go-sendxmpp (Debian package `go-sendxmpp`, 0.5.6) as a second, independent real client.
 *
 * Behaviour checked on this machine (see also test/e2e/prosody-harness.ts):
 * - `-j HOST:PORT` overrides the connect address (no SRV lookup). Without `-t` it speaks
 *   STARTTLS (and refuses to authenticate if the server offers none); `-t` is direct TLS. Either way the
 *   certificate is checked against the JID's domain (`x509: certificate is valid for
 *   nope.test, not example.test`), never against HOST, even when HOST is an IP address
 *   listed in the certificate (go-xmpp sets tls.Config.ServerName to the JID domain, so
 *   that is its SNI too).
 * - It trusts Go's system roots: SSL_CERT_FILE (one PEM file) plus SSL_CERT_DIR; both are
 *   overridden here (the CA file, and an empty folder) whatever the environment says.
 * - Options must come before the recipients: `go-sendxmpp bob@x -m FILE` takes `-m` and
 *   `FILE` as two more recipients.
 * - The message is read from stdin (lines joined with "\n": one trailing newline is
 *   dropped). An EMPTY message makes it exit 0 at once without even connecting, so an
 *   empty body is refused here.
 * - It leaves without closing the stream (Prosody logs "unexpected eof"), sends
 *   type='chat', authenticates with PLAIN over TLS, and `--timeout` (default 10 s)
 *   bounds only the TCP connect: a server that never answers keeps it forever, hence
 *   the kill timer here.
 * - Credentials go through a 0600 config file (`-f`), not argv, and HOME points to a
 *   temp folder so ~/.config/go-sendxmpp/sendxmpprc is never read.
 * - go-xmpp's connect() honours HTTP_PROXY/http_proxy (an HTTP CONNECT hop): removed here.
 * - With -j it makes no DNS query and reads no resolv.conf (strace: one connect(), to
 *   127.0.0.1; files opened: the rc file, SSL_CERT_FILE, SSL_CERT_DIR).
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exited, spawnTied, TailBuffer } from './prosody.js';

export interface GoSendxmppOptions {
  /** Local part ('alice') or a full bare JID ('alice@example.test'). */
  jidUser: string;
  domain: string;
  password: string;
  /** Where to connect: '127.0.0.1:PORT'. */
  hostPort: string;
  /** Recipient JID. */
  to: string;
  body: string;
  /** PEM file that becomes SSL_CERT_FILE (SSL_CERT_DIR becomes an empty folder). */
  caCertPath: string;
  /** `-t`: direct TLS instead of STARTTLS. */
  directTls?: boolean;
  /** Kill after this long. Default 20 s. */
  timeoutMs?: number;
}

export interface GoSendxmppResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs go-sendxmpp once and reports how it ended; never rejects because of its exit code. */
export async function runGoSendxmpp(opts: GoSendxmppOptions): Promise<GoSendxmppResult> {
  if (opts.body === '') throw new Error('go-sendxmpp sends nothing (and exits 0) for an empty message');
  const jid = opts.jidUser.includes('@') ? opts.jidUser : `${opts.jidUser}@${opts.domain}`;
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const home = await mkdtemp(path.join(os.tmpdir(), 'xop-sendxmpp-'));
  try {
    const emptyCertDir = path.join(home, 'empty-cert-dir');
    await mkdir(emptyCertDir);
    const rc = path.join(home, 'sendxmpprc');
    if (/[\r\n]/.test(opts.password)) throw new Error('go-sendxmpp: a password with a line break cannot go into its config file');
    await writeFile(rc, `username: ${jid}\npassword: ${opts.password}\n`, { mode: 0o600 });

    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of Object.keys(env)) {
      if (/^(https?|all|no|ftp)_proxy$/i.test(name) || /^SSL_CERT_(FILE|DIR)$/.test(name)) delete env[name];
    }
    Object.assign(env, { HOME: home, SSL_CERT_FILE: opts.caCertPath, SSL_CERT_DIR: emptyCertDir });

    const args = ['-f', rc, '-j', opts.hostPort, ...(opts.directTls ? ['-t'] : []), opts.to];
    const child = spawnTied('go-sendxmpp', args, { env, cwd: home, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout = new TailBuffer();
    const stderr = new TailBuffer();
    child.stdout?.on('data', (d: Buffer) => stdout.push(d));
    child.stderr?.on('data', (d: Buffer) => stderr.push(d));
    let spawnError: Error | undefined;
    child.once('error', (err) => {
      spawnError = err;
    });
    child.stdin?.on('error', () => {
      // EPIPE if it dies before reading: the exit status tells the story.
    });
    child.stdin?.end(opts.body);

    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const { code, signal } = await exited(child);
    clearTimeout(timer);
    if (spawnError) throw new Error(`could not run go-sendxmpp: ${spawnError.message}`);
    const redact = (s: string): string => s.split(opts.password).join('[redacted]');
    return { code, signal, stdout: redact(stdout.text), stderr: redact(stderr.text), timedOut };
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** Sends one message with go-sendxmpp; rejects (with its stderr) unless it exits 0. */
export async function sendWithGoSendxmpp(opts: GoSendxmppOptions): Promise<GoSendxmppResult> {
  const result = await runGoSendxmpp(opts);
  if (result.code !== 0) {
    const how = result.timedOut ? `killed after ${opts.timeoutMs ?? 20_000} ms` : `exit ${result.code ?? result.signal}`;
    throw new Error(`go-sendxmpp to ${opts.to} via ${opts.hostPort} failed (${how}): ${result.stderr.trim() || result.stdout.trim() || '(no output)'}`);
  }
  return result;
}
