import path from 'node:path';
import { linkOrUndefined, listOrEmpty, readOrUndefined } from '../proc-files.js';

export interface ListenerOwner {
  readonly pid: number;
  /** The process name (/proc/PID/comm). */
  readonly name: string;
  /** This daemon (its dist/cli/main.js, or a command named xmpp-onion-proxy). */
  readonly isDaemon: boolean;
  /** systemd holding the socket for socket activation. */
  readonly isSystemd: boolean;
}

/**
 * The processes that hold a listening TCP socket on `port` (on any address: a wildcard listener
 * blocks 127.0.0.1 too), from /proc/net/tcp{,6} and each process's open descriptors. Only the
 * processes this user may inspect are found (all of them as root).
 */
export function listenerOwners(port: number, procRoot = '/proc'): ListenerOwner[] {
  const inodes = new Set<string>();
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readLines(path.join(procRoot, 'net', table)).slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      const state = fields[3];
      const inode = fields[9];
      if (!local || state !== '0A' || !inode || inode === '0') continue;
      if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) inodes.add(inode);
    }
  }
  if (inodes.size === 0) return [];
  const owners: ListenerOwner[] = [];
  for (const entry of listOrEmpty(procRoot)) {
    if (!/^\d+$/.test(entry)) continue;
    const fdDir = path.join(procRoot, entry, 'fd');
    const holds = listOrEmpty(fdDir).some((fd) => {
      const target = linkOrUndefined(path.join(fdDir, fd));
      return target !== undefined && inodes.has(target.replace(/^socket:\[(\d+)\]$/, '$1'));
    });
    if (holds) owners.push(describe(Number(entry), path.join(procRoot, entry)));
  }
  return owners;
}

function describe(pid: number, dir: string): ListenerOwner {
  const name = readLines(path.join(dir, 'comm'))[0]?.trim() ?? '?';
  const args = (readOrUndefined(path.join(dir, 'cmdline')) ?? '').split('\0').filter(Boolean);
  const cwd = linkOrUndefined(path.join(dir, 'cwd')) ?? '/';
  return { pid, name, isDaemon: args.some((arg) => isDaemonPath(arg, cwd)), isSystemd: pid === 1 || name === 'systemd' };
}

/** `…/xmpp-onion-proxy` (the launcher), or `…/dist/cli/main.js` next to a package.json named xmpp-onion-proxy. */
function isDaemonPath(arg: string, cwd: string): boolean {
  if (path.basename(arg) === 'xmpp-onion-proxy') return true;
  if (!arg.endsWith(path.join('dist', 'cli', 'main.js'))) return false;
  const pkg = readOrUndefined(path.resolve(cwd, arg, '..', '..', '..', 'package.json'));
  try {
    return pkg !== undefined && (JSON.parse(pkg) as { name?: string }).name === 'xmpp-onion-proxy';
  } catch {
    return false;
  }
}

function readLines(file: string): string[] {
  return (readOrUndefined(file) ?? '').split('\n').filter(Boolean);
}
