/**
 * A real ejabberd 23.01 (Debian package `ejabberd`) for end-to-end tests, confined to a
 * private temp folder and to 127.0.0.1, with STARTTLS required and a test CA made at run time.
 *
 *   const e = await startEjabberd({ users: [['alice', pw1], ['bob', pw2]] });
 *   t.teardown(() => e.stop());
 *
 * Why it is started this way (checked on Debian 12):
 * - `erl -s ejabberd` directly, not `ejabberdctl`: without a node name the VM is not
 *   distributed, so no epmd on its fixed port 4369 and no distribution listener at all.
 * - users come from an external-auth program (`extauth_program`, ejabberd's documented
 *   2-byte length-prefixed protocol) that knows the test's users: registering them with
 *   `ejabberdctl` would need the distribution. ejabberd then offers SASL PLAIN (over TLS).
 * - only a c2s listener on 127.0.0.1; no s2s, http or admin listener; no modules that
 *   reach out.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createTestPki } from './certs.js';
import { freePort } from './ports.js';
import { readStreamFeatures, spawnTied, TailBuffer, terminate } from './prosody.js';

export interface EjabberdOptions {
  /** Default 'example.test'. */
  domain?: string;
  /** [user, password] pairs the external-auth program accepts. */
  users?: Array<[string, string]>;
  /** Bound on the start-up wait. Default 30 s. */
  startTimeoutMs?: number;
}

export interface Ejabberd {
  domain: string;
  /** STARTTLS c2s port on 127.0.0.1 (STARTTLS required). */
  c2sPort: number;
  caCertPath: string;
  dir: string;
  logTail(lines?: number): string;
  /** SIGTERM, SIGKILL after a bound, remove `dir`. Idempotent. */
  stop(): Promise<void>;
}

const EBIN_ROOT = '/usr/lib/x86_64-linux-gnu';

// ejabberd's external authentication: each request is a 2-byte big-endian length and
// "op:user:server[:password]"; each answer is 2-byte length 2 and 2-byte 1 (yes) or 0 (no).
const EXTAUTH = `
const users = new Map(JSON.parse(process.env.EXTAUTH_USERS));
let pending = Buffer.alloc(0);
process.stdin.on('data', (chunk) => {
  pending = Buffer.concat([pending, chunk]);
  while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
    const length = pending.readUInt16BE(0);
    const [op, user, , ...password] = pending.subarray(2, 2 + length).toString('utf8').split(':');
    pending = pending.subarray(2 + length);
    const yes = op === 'auth' ? users.get(user) === password.join(':') : op === 'isuser' && users.has(user);
    process.stdout.write(Buffer.from([0, 2, 0, yes ? 1 : 0]));
  }
});
`;

function config(o: { domain: string; port: number; certPath: string; keyPath: string; extauthPath: string }): string {
  return [
    `hosts: [${JSON.stringify(o.domain)}]`,
    'loglevel: info',
    `certfiles: [${JSON.stringify(o.certPath)}, ${JSON.stringify(o.keyPath)}]`,
    'listen:',
    `  - port: ${o.port}`,
    '    ip: "127.0.0.1"',
    '    module: ejabberd_c2s',
    '    starttls_required: true',
    'auth_method: external',
    `extauth_program: ${JSON.stringify(`${process.execPath} ${o.extauthPath}`)}`,
    'modules:',
    '  mod_roster: {}',
    '  mod_disco: {}',
    '  mod_ping: {}',
    '',
  ].join('\n');
}

export async function startEjabberd(opts: EjabberdOptions = {}): Promise<Ejabberd> {
  const domain = opts.domain ?? 'example.test';
  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'xop-ejabberd-'));
  try {
    const pki = await createTestPki(path.join(dir, 'certs'), [domain]);
    const extauthPath = path.join(dir, 'extauth.cjs');
    await writeFile(extauthPath, EXTAUTH);
    const configPath = path.join(dir, 'ejabberd.yml');
    const logPath = path.join(dir, 'ejabberd.log');
    const output = new TailBuffer();
    const logTail = (lines = 30): string => {
      let log = '';
      try {
        log = readFileSync(logPath, 'utf8');
      } catch { /* not written yet */ }
      return [`--- ${logPath} ---`, ...log.split('\n').slice(-lines), '--- output ---', output.text.split('\n').slice(-lines).join('\n')].join('\n');
    };
    // A port picked free can be taken before ejabberd binds it: start again on a fresh one.
    for (;;) {
      const port = await freePort();
      await writeFile(configPath, config({ domain, port, certPath: pki.serverCertPath, keyPath: pki.serverKeyPath, extauthPath }));
      const child = spawnTied('erl', ['-noinput', '-env', 'ERL_CRASH_DUMP_BYTES', '0', '-mnesia', 'dir', JSON.stringify(path.join(dir, 'spool')), '-s', 'ejabberd'], {
        cwd: dir,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: dir,
          ERL_LIBS: EBIN_ROOT,
          EJABBERD_CONFIG_PATH: configPath,
          EJABBERD_LOG_PATH: logPath,
          EXTAUTH_USERS: JSON.stringify(opts.users ?? []),
        },
      });
      child.stdout?.on('data', (d: Buffer) => output.push(d));
      child.stderr?.on('data', (d: Buffer) => output.push(d));
      let stopping: Promise<void> | undefined;
      const stop = (): Promise<void> => {
        stopping ??= terminate(child).then(() => rm(dir, { recursive: true, force: true }));
        return stopping;
      };
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`ejabberd exited during start-up\n${logTail()}`);
        if (Date.now() > deadline) {
          await stop();
          throw new Error(`ejabberd did not answer on 127.0.0.1:${port} in time\n${logTail()}`);
        }
        const portTaken = output.text.includes('eaddrinuse') || logTail(200).includes('eaddrinuse');
        if (portTaken) {
          await terminate(child);
          break;
        }
        const features = await readStreamFeatures(port, domain, { timeoutMs: 1000 }).catch(() => undefined);
        if (features?.includes('<starttls')) return { domain, c2sPort: port, caCertPath: pki.caCertPath, dir, logTail, stop };
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
