/**
 * Debian's profanity (0.13, on libstrophe) run headless in tmux, logged in to one account.
 *
 * - The account is written to profanity's accounts file (GLib key file, in a private
 *   XDG_DATA_HOME) with `server`, `port` and `tls.policy=force`, as `/account set` writes
 *   them; `profanity -a JID` connects it at start. The password is in that file (0600),
 *   never on the command line.
 * - libstrophe verifies with OpenSSL's default paths: SSL_CERT_FILE is the test CA and
 *   SSL_CERT_DIR an empty folder, so the test CA is all it trusts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCommand } from './run-command.js';
import { startInTmux, type TmuxApp } from './tmux.js';

export interface ProfanityOptions {
  readonly workDir: string;
  readonly caCertPath: string;
  readonly jid: string;
  readonly password: string;
  /** The account's `server` and `port`: the connect-server door. */
  readonly server: string;
  readonly port: number;
}

export async function startProfanity(options: ProfanityOptions): Promise<TmuxApp> {
  for (const tool of ['profanity', 'tmux']) {
    if ((await runCommand('sh', ['-c', `command -v ${tool}`])).code !== 0) throw new Error(`${tool} is not installed (Debian: apt install profanity tmux)`);
  }
  if (/[\r\n]/.test(options.password)) throw new Error('profanity: a password with a line break cannot go into its accounts file');
  const home = path.join(options.workDir, 'home');
  const data = path.join(home, '.local', 'share');
  const config = path.join(home, '.config');
  const emptyCerts = path.join(options.workDir, 'no-certs');
  for (const folder of [path.join(data, 'profanity'), path.join(config, 'profanity'), emptyCerts]) mkdirSync(folder, { recursive: true, mode: 0o700 });
  writeFileSync(path.join(data, 'profanity', 'accounts'), [
    `[${options.jid}]`,
    'enabled=true',
    `jid=${options.jid}`,
    `server=${options.server}`,
    `port=${options.port}`,
    'tls.policy=force',
    'resource=profanity',
    `password=${options.password}`,
    '',
  ].join('\n'), { mode: 0o600 });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, XDG_DATA_HOME: data, XDG_CONFIG_HOME: config,
    LANG: 'C.UTF-8', TERM: 'xterm-256color', SSL_CERT_FILE: options.caCertPath, SSL_CERT_DIR: emptyCerts,
  };
  return startInTmux({ workDir: options.workDir, env, name: 'profanity', command: ['profanity', '-a', options.jid] });
}
