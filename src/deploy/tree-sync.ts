import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

export interface SyncResult {
  readonly copied: number;
  readonly removed: number;
  readonly unchanged: number;
}

/**
 * Makes `destDir` hold exactly `files` (paths relative to `srcDir`) with the same bytes and
 * mode: copies what differs, removes what is no longer there, leaves equal files untouched (so
 * a second run writes nothing). `destDir` must be a folder that belongs to us alone.
 */
export function syncTree(srcDir: string, files: readonly string[], destDir: string): SyncResult {
  if (sameFolder(srcDir, destDir)) return { copied: 0, removed: 0, unchanged: files.length };
  let copied = 0;
  let unchanged = 0;
  for (const file of files) {
    const from = path.join(srcDir, file);
    const to = path.join(destDir, file);
    const source = statSync(from);
    const target = statSync(to, { throwIfNoEntry: false });
    const mode = source.mode & 0o777;
    if (target?.isFile() && target.size === source.size && (target.mode & 0o777) === mode && readFileSync(to).equals(readFileSync(from))) {
      unchanged++;
      continue;
    }
    if (target && !target.isFile()) rmSync(to, { recursive: true, force: true });
    mkdirSync(path.dirname(to), { recursive: true });
    copyFileSync(from, to);
    chmodSync(to, mode);
    copied++;
  }
  const removed = prune(destDir, '', new Set(files.map((f) => path.normalize(f))));
  return { copied, removed, unchanged };
}

/** Removes files under dir that are not in `keep`, and folders left empty; returns how many files went. */
function prune(root: string, rel: string, keep: ReadonlySet<string>): number {
  const dir = path.join(root, rel);
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  let removed = 0;
  for (const entry of entries) {
    const child = path.join(rel, entry.name);
    if (entry.isDirectory()) {
      removed += prune(root, child, keep);
      if (readdirSync(path.join(root, child)).length === 0) rmdirSync(path.join(root, child));
    } else if (!keep.has(child)) {
      rmSync(path.join(root, child), { force: true });
      removed++;
    }
  }
  return removed;
}

function sameFolder(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}
