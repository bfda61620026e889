import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';

/*
 * Reading /proc, where entries vanish while we look and most of another user's are closed to
 * us: every failure means "cannot tell", never an error.
 */

export function readOrUndefined(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export function listOrEmpty(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export function linkOrUndefined(file: string): string | undefined {
  try {
    return readlinkSync(file);
  } catch {
    return undefined;
  }
}

/** A process that has exited and not been reaped yet (state Z in /proc/PID/stat). */
export function isZombie(procDir: string): boolean {
  const stat = readOrUndefined(path.join(procDir, 'stat')) ?? '';
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
}
