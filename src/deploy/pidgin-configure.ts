import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DeployError } from './deploy-error.js';
import { describeDoor, type DoorAddress } from './doors.js';
import { applyDoor, describeChanges, type SettingChange } from './pidgin-doors.js';
import { bareJid, isXmpp, listAccounts } from './purple-accounts.js';
import { clientsUsing, runningPurpleClients } from './purple-running.js';
import { backUp, replaceFile } from './safe-write.js';
import { parseXml, serializeXml } from './xml-tree.js';

export interface PidginConfigureOptions {
  /** libpurple's settings folder (Pidgin's `-c`; ~/.purple by default). */
  readonly purpleDir: string;
  readonly door: DoorAddress;
  /** Only this account (a bare JID, or the full account name with its resource). */
  readonly account?: string;
  /** Report what would change; write nothing, and allow a running Pidgin. */
  readonly dryRun?: boolean;
  /** /proc, for tests. */
  readonly procRoot?: string;
  readonly now?: Date;
}

export interface PidginConfigureReport {
  readonly file: string;
  readonly door: DoorAddress;
  readonly accounts: ReadonlyArray<{ readonly name: string; readonly changes: readonly SettingChange[] }>;
  /** Accounts of other protocols, left exactly as they were. */
  readonly otherAccounts: number;
  /** Where the previous file was copied, when something was written. */
  readonly backup?: string;
  readonly written: boolean;
}

export const ACCOUNTS_FILE = 'accounts.xml';

/**
 * Sets the XMPP accounts in libpurple's accounts.xml for one of the daemon's doors. The file is
 * parsed and written back with a real XML parser (only the edited settings change), the old file
 * is kept as a backup, and nothing is written while Pidgin or finch uses the folder (they write
 * the file again when they quit). Never reads out a password.
 */
export function configurePidgin(options: PidginConfigureOptions): PidginConfigureReport {
  const file = path.join(options.purpleDir, ACCOUNTS_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new DeployError('XOP_ERR_NO_ACCOUNTS', `${file} does not exist: add your XMPP account in Pidgin first (Accounts › Manage Accounts › Add), quit Pidgin, then run this again`);
    }
    throw new DeployError('XOP_ERR_ACCOUNTS_FILE', `cannot read ${file} (${code ?? (error as Error).message})`);
  }
  let doc;
  try {
    doc = parseXml(text);
  } catch (error) {
    throw new DeployError('XOP_ERR_ACCOUNTS_FILE', `${file} is not a libpurple accounts file: ${(error as Error).message}`);
  }
  const all = listAccounts(doc);
  const xmpp = all.filter(isXmpp);
  if (xmpp.length === 0) throw new DeployError('XOP_ERR_NO_ACCOUNTS', `${file} has no XMPP account (protocol prpl-jabber): add one in Pidgin first`);
  const wanted = options.account === undefined ? xmpp : xmpp.filter((a) => a.name === options.account || bareJid(a.name) === bareJid(options.account!));
  if (wanted.length === 0) {
    throw new DeployError('XOP_ERR_NO_SUCH_ACCOUNT', `no XMPP account ${options.account} in ${file}; its XMPP accounts: ${xmpp.map((a) => a.name).join(', ')}`);
  }

  if (!options.dryRun) {
    const running = clientsUsing(options.purpleDir, runningPurpleClients(options.procRoot));
    if (running.length > 0) {
      const which = running.map((c) => `${c.program === 'pidgin' ? 'Pidgin' : 'finch'} (pid ${c.pid})`).join(', ');
      throw new DeployError('XOP_ERR_CLIENT_RUNNING', `${which} is running with these settings and would write accounts.xml over this change when it quits: quit it (Buddy List › Quit), then run this again`);
    }
  }

  const accounts = wanted.map((account) => ({ name: account.name, changes: applyDoor(account, options.door) }));
  const changed = accounts.some((a) => a.changes.length > 0);
  let backup: string | undefined;
  if (changed && !options.dryRun) {
    backup = backUp(file, options.now);
    replaceFile(file, serializeXml(doc));
  }
  return { file, door: options.door, accounts, otherAccounts: all.length - xmpp.length, ...(backup ? { backup } : {}), written: changed && !options.dryRun };
}

/** What the command prints: each account and each change, the backup, and what to do next. */
export function formatPidginReport(report: PidginConfigureReport, dryRun = false): string {
  const lines = [`${report.file}: XMPP accounts for ${describeDoor(report.door)}`];
  for (const account of report.accounts) {
    if (account.changes.length === 0) {
      lines.push(`  ${account.name}: already set, nothing to change`);
      continue;
    }
    lines.push(`  ${account.name}:`, ...describeChanges(account.changes).map((line) => `    ${line}`));
  }
  if (report.otherAccounts > 0) lines.push(`  ${report.otherAccounts} account(s) of other protocols left as they were`);
  const changed = report.accounts.some((a) => a.changes.length > 0);
  if (!changed) lines.push('Nothing to change.');
  else if (dryRun) lines.push('Dry run: nothing was written.');
  else {
    lines.push(`Saved. The previous file is kept as ${report.backup}.`);
    if (report.door.kind === 'connect-server') {
      lines.push(
        `At the first login Pidgin asks to accept a certificate "for ${report.door.host}" that "claims to be from" your server's domain:`,
        'the connect server is checked instead of the domain. Accept it only if that domain is your server\'s (Pidgin then remembers it).',
        'The SOCKS door (--door socks) checks the certificate against your domain and needs no such step.',
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
