import { statSync } from 'node:fs';
import path from 'node:path';
import { isZombie, linkOrUndefined, listOrEmpty, readOrUndefined } from './proc-files.js';

/** A running libpurple program; it rewrites accounts.xml when it quits, undoing any edit. */
export interface PurpleClient {
  readonly pid: number;
  readonly program: 'pidgin' | 'finch';
  /** Its settings folder (`-c DIR`, else `$HOME/.purple`); undefined when /proc does not say. */
  readonly configDir?: string;
}

const PROGRAMS = new Set(['pidgin', 'finch']);

/** Pidgin and finch processes visible in /proc (`procRoot` for tests). */
export function runningPurpleClients(procRoot = '/proc'): PurpleClient[] {
  const clients: PurpleClient[] = [];
  for (const entry of listOrEmpty(procRoot)) {
    if (!/^\d+$/.test(entry)) continue;
    const dir = path.join(procRoot, entry);
    const comm = readOrUndefined(path.join(dir, 'comm'))?.trim();
    if (comm === undefined || !PROGRAMS.has(comm) || isZombie(dir)) continue;
    const args = (readOrUndefined(path.join(dir, 'cmdline')) ?? '').split('\0').filter(Boolean);
    const configDir = configDirOf(args, dir);
    clients.push({ pid: Number(entry), program: comm as PurpleClient['program'], ...(configDir !== undefined ? { configDir } : {}) });
  }
  return clients;
}

/**
 * The clients that use `purpleDir`, or might (when their folder is unknown). Folders are compared
 * by device and inode, so a bind mount (Tails mounts its Pidgin persistence on ~/.purple) matches.
 */
export function clientsUsing(purpleDir: string, clients: readonly PurpleClient[]): PurpleClient[] {
  const target = identity(purpleDir);
  return clients.filter((client) => {
    if (client.configDir === undefined) return true;
    const theirs = identity(client.configDir);
    return target === undefined || theirs === undefined ? path.resolve(client.configDir) === path.resolve(purpleDir) : theirs === target;
  });
}

/** `-c DIR`, `-cDIR`, `--config DIR`, `--config=DIR` (GLib option syntax), else $HOME/.purple. */
function configDirOf(args: readonly string[], procDir: string): string | undefined {
  let dir: string | undefined;
  for (let i = 1; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-c' || arg === '--config') dir = args[i + 1];
    else if (arg.startsWith('--config=')) dir = arg.slice('--config='.length);
    else if (arg.startsWith('-c') && !arg.startsWith('--')) dir = arg.slice(2);
  }
  if (dir !== undefined) {
    if (path.isAbsolute(dir)) return dir;
    const cwd = linkOrUndefined(path.join(procDir, 'cwd'));
    return cwd === undefined ? undefined : path.resolve(cwd, dir);
  }
  const environ = readOrUndefined(path.join(procDir, 'environ'));
  const home = environ?.split('\0').find((v) => v.startsWith('HOME='))?.slice('HOME='.length);
  return home ? path.join(home, '.purple') : undefined;
}

/** A process that has exited but not been reaped yet (state Z in /proc/PID/stat) writes nothing any more. */
function identity(dir: string): string | undefined {
  const stat = statSync(dir, { throwIfNoEntry: false });
  return stat ? `${stat.dev}:${stat.ino}` : undefined;
}
