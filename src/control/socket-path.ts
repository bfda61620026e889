import { lstatSync, mkdirSync, unlinkSync, type Stats } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ProxyError } from '../common/errors.js';

export const CONTROL_FOLDER = 'xmpp-onion-proxy';
export const CONTROL_FILE = 'control.sock';
/** Where a system service's socket lands with `RuntimeDirectory=xmpp-onion-proxy`. */
export const SYSTEM_CONTROL_PATH = `/run/${CONTROL_FOLDER}/${CONTROL_FILE}`;
/** sun_path holds 108 bytes on Linux, the last one a NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

/** The control socket's folder or file is not safely ours: the daemon does not start. */
export class ControlPathError extends ProxyError {
  constructor(message: string) {
    super('XOP_ERR_CONTROL_PATH', message);
  }
}

/**
 * The daemon's default control socket: systemd's RuntimeDirectory= (it sets RUNTIME_DIRECTORY),
 * else the user's runtime folder. Without either there is no default: /tmp is shared with
 * every user, so a name there could be taken first by someone else and stop the daemon.
 */
export function defaultControlPath(env: NodeJS.ProcessEnv): string | undefined {
  const runtime = env.RUNTIME_DIRECTORY?.split(':')[0];
  if (runtime && path.isAbsolute(runtime)) return path.join(runtime, CONTROL_FILE);
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, CONTROL_FOLDER, CONTROL_FILE);
  return undefined;
}

/** Where status, monitor and reload look, in order: the daemon's default, then a system service's. */
export function clientControlPaths(env: NodeJS.ProcessEnv): string[] {
  const candidates = [defaultControlPath(env), SYSTEM_CONTROL_PATH].filter((p): p is string => p !== undefined);
  return [...new Set(candidates)];
}

export type PreparedPath = 'ready' | 'in-use';

/**
 * Makes `file`'s folder (0700) if missing, checks the folder and any file already there are ours
 * and private, and removes a stale socket. 'in-use' when a daemon already answers on it.
 * Throws ControlPathError, naming the path, the problem and the fix.
 */
export async function prepareControlPath(file: string, uid = currentUid()): Promise<PreparedPath> {
  if (!path.isAbsolute(file)) throw new ControlPathError(`control socket ${file}: expected an absolute path`);
  const folder = path.dirname(file);
  let stats = lstat(folder);
  if (!stats) {
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    stats = lstat(folder)!;
  }
  checkFolder(folder, stats, uid);
  const existing = lstat(file);
  if (!existing) return 'ready';
  if (!existing.isSocket()) throw new ControlPathError(`control socket ${file} exists and is not a socket; remove it or choose another --control path`);
  if (existing.uid !== uid) throw new ControlPathError(`control socket ${file} is owned by uid ${existing.uid}, not by this user (uid ${uid}); remove it or choose another --control path`);
  if (await answers(file)) return 'in-use';
  unlinkSync(file);
  return 'ready';
}

/** The folder must be a real directory, ours, with no permission for group or others (ls: drwx------). */
export function checkFolder(folder: string, stats: Stats, uid: number): void {
  if (stats.isSymbolicLink()) throw new ControlPathError(`control socket folder ${folder} is a symbolic link; give a path in the real folder`);
  if (!stats.isDirectory()) throw new ControlPathError(`control socket folder ${folder} is not a folder`);
  if (stats.uid !== uid) {
    throw new ControlPathError(`control socket folder ${folder} is owned by uid ${stats.uid}, not by this user (uid ${uid}): someone else could replace the socket; choose another --control path`);
  }
  const mode = stats.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new ControlPathError(
      `control socket folder ${folder} has permissions ${mode.toString(8).padStart(4, '0')}; it must be 0700 (only you): chmod 700 ${folder}` +
        ' (under systemd: RuntimeDirectoryMode=0700)',
    );
  }
}

function lstat(file: string): Stats | undefined {
  return lstatSync(file, { throwIfNoEntry: false });
}

function currentUid(): number {
  return process.geteuid?.() ?? 0;
}

/** True when something accepts a connection on the socket (a daemon already running). */
function answers(file: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: file });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED') resolve(false);
      else reject(new ControlPathError(`control socket ${file}: ${error.code ?? error.message}`));
    });
  });
}
