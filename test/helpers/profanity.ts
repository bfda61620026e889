/**
 * Debian's profanity (0.13, on libstrophe) run headless in tmux, logged in to one account.
 *
 * - The account is written to profanity's accounts file (GLib key file, in a private
 *   XDG_DATA_HOME), as `/account set` writes it; `profanity -a JID` connects it at start. The
 *   password is in that file (0600), never on the command line.
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
  /** Account keys besides jid and password, e.g. the connect-server door's `server`, `port`, `tls.policy`. */
  readonly settings?: Readonly<Record<string, string>>;
}

/** Profanity's folders under `workDir`: its data folder holds the accounts file. */
export function profanityDirs(workDir: string): { home: string; data: string; config: string; profanity: string } {
  const home = path.join(workDir, 'home');
  const data = path.join(home, '.local', 'share');
  return { home, data, config: path.join(home, '.config'), profanity: path.join(data, 'profanity') };
}

/** Writes the account as Profanity's /account commands would; returns Profanity's data folder. */
export function writeProfanityAccount(options: ProfanityOptions): string {
  if (/[\r\n]/.test(options.password)) throw new Error('profanity: a password with a line break cannot go into its accounts file');
  const dirs = profanityDirs(options.workDir);
  for (const folder of [dirs.profanity, path.join(dirs.config, 'profanity')]) mkdirSync(folder, { recursive: true, mode: 0o700 });
  const settings = Object.entries(options.settings ?? {}).map(([key, value]) => `${key}=${value}`);
  writeFileSync(path.join(dirs.profanity, 'accounts'), [
    `[${options.jid}]`, 'enabled=true', `jid=${options.jid}`, 'resource=profanity', `password=${options.password}`, ...settings, '',
  ].join('\n'), { mode: 0o600 });
  return dirs.profanity;
}

/** Runs profanity on the account already written to `workDir` (writeProfanityAccount). */
export async function startProfanity(options: Pick<ProfanityOptions, 'workDir' | 'caCertPath' | 'jid'>): Promise<TmuxApp> {
  for (const tool of ['profanity', 'tmux']) {
    if ((await runCommand('sh', ['-c', `command -v ${tool}`])).code !== 0) throw new Error(`${tool} is not installed (Debian: apt install profanity tmux)`);
  }
  const { home, data, config } = profanityDirs(options.workDir);
  const emptyCerts = path.join(options.workDir, 'no-certs');
  mkdirSync(emptyCerts, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, XDG_DATA_HOME: data, XDG_CONFIG_HOME: config,
    LANG: 'C.UTF-8', TERM: 'xterm-256color', SSL_CERT_FILE: options.caCertPath, SSL_CERT_DIR: emptyCerts,
  };
  return startInTmux({ workDir: options.workDir, env, name: 'profanity', command: ['profanity', '-a', options.jid] });
}
