import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DeployError } from './deploy-error.js';
import { describeDoor, type DoorAddress } from './doors.js';
import { KeyFile } from './key-file.js';
import { isZombie, listOrEmpty, readOrUndefined } from './proc-files.js';
import { backUp, replaceFile } from './safe-write.js';

/** Profanity's accounts file, under its data folder ($XDG_DATA_HOME/profanity). */
export const PROFANITY_ACCOUNTS = 'accounts';

/**
 * What an account needs for the connect-server door (Profanity has no proxy setting): the door
 * as its server and port, and `tls force` (a server without STARTTLS is never used in clear).
 * libstrophe still checks the certificate against the account's domain.
 */
export function profanityDoorSettings(door: DoorAddress): ReadonlyArray<readonly [string, string]> {
  return [['server', door.host], ['port', String(door.port)], ['tls.policy', 'force']];
}

export interface ProfanityChange {
  readonly key: string;
  readonly from?: string;
  readonly to: string;
}

export interface ProfanityConfigureOptions {
  /** Profanity's data folder (`$XDG_DATA_HOME/profanity`). */
  readonly dataDir: string;
  readonly door: DoorAddress;
  readonly account?: string;
  readonly dryRun?: boolean;
  readonly procRoot?: string;
  readonly now?: Date;
}

export interface ProfanityConfigureReport {
  readonly file: string;
  readonly door: DoorAddress;
  readonly accounts: ReadonlyArray<{ readonly name: string; readonly changes: readonly ProfanityChange[] }>;
  readonly backup?: string;
  readonly written: boolean;
}

export function readProfanityAccounts(file: string): KeyFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DeployError('XOP_ERR_NO_ACCOUNTS', `${file} does not exist: add your account in Profanity first (/account add NAME, /account set NAME jid JID), quit it, then run this again`);
    throw new DeployError('XOP_ERR_ACCOUNTS_FILE', `cannot read ${file} (${code ?? (error as Error).message})`);
  }
  return new KeyFile(text);
}

/**
 * Sets Profanity's accounts for the connect-server door. Only the three keys change, every other
 * line stays byte for byte; the old file is kept as a backup; nothing is written while Profanity
 * runs (it writes the file again when it quits). Never reads out a password.
 */
export function configureProfanity(options: ProfanityConfigureOptions): ProfanityConfigureReport {
  if (options.door.kind !== 'connect-server') throw new DeployError('XOP_ERR_DOOR', 'Profanity has no proxy setting: it can use the connect-server door only');
  const file = path.join(options.dataDir, PROFANITY_ACCOUNTS);
  const accounts = readProfanityAccounts(file);
  const all = accounts.groups();
  if (all.length === 0) throw new DeployError('XOP_ERR_NO_ACCOUNTS', `${file} has no account: add one in Profanity first`);
  const wanted = options.account === undefined ? all : all.filter((name) => name === options.account || accounts.get(name, 'jid') === options.account);
  if (wanted.length === 0) throw new DeployError('XOP_ERR_NO_SUCH_ACCOUNT', `no account ${options.account} in ${file}; its accounts: ${all.join(', ')}`);
  if (!options.dryRun) {
    const running = runningProfanity(options.procRoot);
    if (running.length > 0) {
      throw new DeployError('XOP_ERR_CLIENT_RUNNING', `Profanity (pid ${running.join(', ')}) is running and would write its accounts over this change when it quits: quit it (/quit), then run this again`);
    }
  }
  const report = wanted.map((name) => {
    const changes: ProfanityChange[] = [];
    for (const [key, value] of profanityDoorSettings(options.door)) {
      const from = accounts.get(name, key);
      if (from === value) continue;
      accounts.set(name, key, value);
      changes.push({ key, ...(from !== undefined ? { from } : {}), to: value });
    }
    return { name, changes };
  });
  const changed = report.some((a) => a.changes.length > 0);
  let backup: string | undefined;
  if (changed && !options.dryRun) {
    backup = backUp(file, options.now);
    replaceFile(file, accounts.toString());
  }
  return { file, door: options.door, accounts: report, ...(backup ? { backup } : {}), written: changed && !options.dryRun };
}

export function formatProfanityReport(report: ProfanityConfigureReport, dryRun = false): string {
  const lines = [`${report.file}: accounts for ${describeDoor(report.door)}`];
  for (const account of report.accounts) {
    if (account.changes.length === 0) lines.push(`  ${account.name}: already set, nothing to change`);
    else lines.push(`  ${account.name}:`, ...account.changes.map((c) => `    ${c.key}: ${c.from ?? '(not set)'} → ${c.to}`));
  }
  const changed = report.accounts.some((a) => a.changes.length > 0);
  if (!changed) lines.push('Nothing to change.');
  else if (dryRun) lines.push('Dry run: nothing was written.');
  else lines.push(`Saved. The previous file is kept as ${report.backup}.`);
  return `${lines.join('\n')}\n`;
}

/** Pids of running Profanity processes (`procRoot` for tests); zombies do not count. */
export function runningProfanity(procRoot = '/proc'): number[] {
  return listOrEmpty(procRoot)
    .filter((entry) => /^\d+$/.test(entry) && readOrUndefined(path.join(procRoot, entry, 'comm'))?.trim() === 'profanity' && !isZombie(path.join(procRoot, entry)))
    .map(Number);
}
