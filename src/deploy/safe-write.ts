import { closeSync, copyFileSync, existsSync, fchmodSync, fchownSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync, type Stats } from 'node:fs';
import path from 'node:path';

/**
 * Replaces `file` with `content` so that a crash leaves either the old or the new file, never
 * half of one: a temporary file in the same folder, flushed, then renamed over. Mode and
 * owner follow the old file (a settings file that holds passwords stays 0600 and stays the
 * user's, even when root runs this), else `mode`.
 */
export function replaceFile(file: string, content: string, mode = 0o600): void {
  const old = statSync(file, { throwIfNoEntry: false });
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = openSync(temporary, 'wx', old ? old.mode & 0o7777 : mode);
  try {
    writeSync(fd, content);
    keepOwnerAndMode(fd, old, mode);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temporary, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(temporary, file);
}

/** Copies `file` next to itself as `<name>.<UTC time>.bak` (same mode and owner); returns its path. */
export function backUp(file: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  let backup = `${file}.${stamp}.bak`;
  for (let n = 1; existsSync(backup); n++) backup = `${file}.${stamp}-${n}.bak`;
  copyFileSync(file, backup);
  const old = statSync(file);
  const fd = openSync(backup, 'r+');
  try {
    keepOwnerAndMode(fd, old, 0o600);
  } finally {
    closeSync(fd);
  }
  return backup;
}

function keepOwnerAndMode(fd: number, old: Stats | undefined, mode: number): void {
  fchmodSync(fd, old ? old.mode & 0o7777 : mode);
  if (old && process.getuid?.() === 0) fchownSync(fd, old.uid, old.gid);
}
