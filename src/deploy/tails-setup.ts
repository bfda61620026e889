import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { anyFailed, type CheckLine } from './check-line.js';
import { ONE_FILE_BUILD, oneFileBuildFiles, PACKAGE_ROOT } from './daemon-files.js';
import { DeployError } from './deploy-error.js';
import { autostartEntry } from './desktop-entry.js';
import { DEFAULT_DOORS, describeDoor, type DoorAddress } from './doors.js';
import { configurePidgin, ACCOUNTS_FILE } from './pidgin-configure.js';
import { replaceFile } from './safe-write.js';
import { checkTails } from './tails-checks.js';
import { TAILS_NODE, TAILS_TOR, type TailsLayout } from './tails-layout.js';
import { syncTree } from './tree-sync.js';

export interface TailsSetupOptions {
  readonly layout: TailsLayout;
  /** Which door Pidgin is set for. */
  readonly door: DoorAddress;
  /** Pidgin's settings; by default the Pidgin persistence folder, when that feature is on. */
  readonly purpleDir?: string;
  /** The daemon to copy (this one by default). */
  readonly packageRoot?: string;
  readonly nodeVersion?: string;
  readonly procRoot?: string;
}

export interface TailsSetupResult {
  readonly lines: CheckLine[];
  /** Files written or removed; 0 on a second run. */
  readonly changes: number;
  readonly ok: boolean;
  /** The command that starts the daemon now, as the autostart entry does at login. */
  readonly startCommand: readonly string[];
}

/**
 * Run once from a Tails session with Persistent Storage unlocked. Checks first and writes nothing
 * unless all pass; then copies the one-file build (no node_modules) into the Persistent Folder, writes its configuration
 * (Tails' Tor, both doors on 127.0.0.1: Tails closes the IPv6 loopback), an autostart entry
 * through Dotfiles, and sets Pidgin. Running it again changes nothing.
 */
export function tailsSetup(options: TailsSetupOptions): TailsSetupResult {
  const { layout } = options;
  const mainJs = path.join(layout.appDir, ONE_FILE_BUILD);
  const startCommand = [TAILS_NODE, mainJs, '--config', layout.configFile];
  const lines = checkTails(layout, options.nodeVersion);
  if (anyFailed(lines)) return { lines, changes: 0, ok: false, startCommand };
  let changes = 0;

  const root = options.packageRoot ?? PACKAGE_ROOT;
  const synced = syncTree(root, oneFileBuildFiles(root), layout.appDir);
  changes += synced.copied + synced.removed;
  lines.push(synced.copied + synced.removed === 0
    ? { status: 'skip', text: `the daemon in ${layout.appDir} is up to date` }
    : { status: 'ok', text: `copied the daemon to ${layout.appDir} (${synced.copied} files written, ${synced.removed} removed, ${synced.unchanged} unchanged)` });
  lines.push(checkCopyRuns(mainJs, root));

  if (existsSync(layout.configFile)) {
    lines.push({ status: 'skip', text: `kept your ${layout.configFile}` });
  } else {
    writeOwn(layout.configFile, `${JSON.stringify(tailsConfig(), null, 2)}\n`, 0o644);
    changes++;
    lines.push({ status: 'ok', text: `wrote ${layout.configFile} (Tor at ${TAILS_TOR}; doors ${DEFAULT_DOORS['connect-server']} and ${DEFAULT_DOORS.socks})` });
  }

  const entry = autostartEntry({ name: 'xmpp-onion-proxy', comment: 'XMPP through Tor, encryption required: for Pidgin', exec: startCommand });
  if (sameContent(layout.autostartFile, entry)) {
    lines.push({ status: 'skip', text: `the autostart entry ${layout.autostartFile} is up to date` });
  } else {
    writeOwn(layout.autostartFile, entry, 0o644);
    changes++;
    lines.push({ status: 'ok', text: `wrote the autostart entry ${layout.autostartFile} (Dotfiles links it into ~/.config/autostart at login)` });
  }

  const pidgin = setPidgin(options);
  changes += pidgin.changes;
  lines.push(pidgin.line);
  return { lines, changes, ok: !anyFailed(lines), startCommand };
}

/** Tails' Tor port; both doors on 127.0.0.1. */
export function tailsConfig(): Record<string, string> {
  return { listen: DEFAULT_DOORS['connect-server'], socks: DEFAULT_DOORS.socks, tor: TAILS_TOR };
}

function setPidgin(options: TailsSetupOptions): { line: CheckLine; changes: number } {
  const dir = options.purpleDir ?? options.layout.pidgin;
  const command = `node ${path.join(options.layout.appDir, ONE_FILE_BUILD)} configure pidgin --door ${options.door.kind}`;
  const how = `then run this setup again (or \`${command}\`)`;
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    return {
      line: { status: 'warn', text: `Pidgin: the Pidgin Internet Messenger feature of Persistent Storage is off (no ${dir}); its settings would be lost at shutdown. Turn it on, add your account in Pidgin, ${how}` },
      changes: 0,
    };
  }
  if (!existsSync(path.join(dir, ACCOUNTS_FILE))) {
    return { line: { status: 'warn', text: `Pidgin: no accounts yet in ${dir}. Add your XMPP account in Pidgin, quit it, ${how}` }, changes: 0 };
  }
  try {
    const report = configurePidgin({ purpleDir: dir, door: options.door, ...(options.procRoot ? { procRoot: options.procRoot } : {}) });
    const names = report.accounts.map((a) => a.name).join(', ');
    if (!report.written) return { line: { status: 'skip', text: `Pidgin: ${names} already set for ${describeDoor(options.door)}` }, changes: 0 };
    return { line: { status: 'ok', text: `Pidgin: set ${names} for ${describeDoor(options.door)}, encryption required (previous file kept as ${report.backup})` }, changes: 1 };
  } catch (error) {
    if (!(error instanceof DeployError)) throw error;
    return { line: { status: 'fail', text: `Pidgin: ${error.message}` }, changes: 0 };
  }
}

/** The copy must start on this Node.js: `--version` loads its command line and package.json. */
function checkCopyRuns(mainJs: string, root: string): CheckLine {
  const want = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const run = spawnSync(process.execPath, [mainJs, '--version'], { encoding: 'utf8', timeout: 30_000 });
  const got = run.stdout?.trim();
  if (run.status === 0 && got === want) return { status: 'ok', text: `the copy runs: version ${got}` };
  return { status: 'fail', text: `the copy in ${path.dirname(path.dirname(path.dirname(mainJs)))} does not run (${run.error?.message ?? `exit ${run.status}: ${(run.stderr ?? '').trim().slice(0, 300)}`})`, fix: 'run this setup again; if it fails again, copy the daemon afresh' };
}

function writeOwn(file: string, content: string, mode: number): void {
  mkdirSync(path.dirname(file), { recursive: true });
  replaceFile(file, content, mode);
}

function sameContent(file: string, content: string): boolean {
  try {
    return readFileSync(file, 'utf8') === content;
  } catch {
    return false;
  }
}
