import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeployError } from './deploy-error.js';

/** The folder holding this daemon's package.json (dist/deploy/… or src/deploy/… → two levels up). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface PackageJson {
  readonly name?: string;
  readonly version?: string;
  readonly files?: readonly string[];
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly optionalDependencies?: Readonly<Record<string, string>>;
}

/**
 * Every file the daemon needs to run, relative to `root`: package.json, what its "files" field
 * publishes (dist, data, …), and its production dependencies, found the way Node resolves them
 * (node_modules up the tree) so that a development checkout's test tools are left out.
 */
export function productionFiles(root = PACKAGE_ROOT): string[] {
  const pkg = readPackage(root);
  const files = new Set<string>(['package.json']);
  for (const entry of pkg.files ?? []) {
    for (const file of walk(root, entry)) files.add(file);
  }
  for (const dir of productionPackages(root)) {
    for (const file of walk(root, dir, { skip: 'node_modules' })) files.add(file);
  }
  return [...files].sort();
}

/** Folders (relative to `root`) of the production dependencies, transitively. */
export function productionPackages(root = PACKAGE_ROOT): string[] {
  const found = new Set<string>();
  const queue: string[] = ['.'];
  while (queue.length > 0) {
    const from = queue.shift()!;
    const pkg = readPackage(path.join(root, from));
    const optional = new Set(Object.keys(pkg.optionalDependencies ?? {}));
    for (const name of new Set([...Object.keys(pkg.dependencies ?? {}), ...optional])) {
      const dir = resolvePackage(root, from, name);
      if (dir === undefined) {
        if (optional.has(name)) continue;
        throw new DeployError('XOP_ERR_DEPENDENCY', `the dependency ${name} of ${pkg.name ?? from} is not installed under ${root}: run \`npm ci --omit=dev\` there first`);
      }
      if (found.has(dir)) continue;
      found.add(dir);
      queue.push(dir);
    }
  }
  return [...found].sort();
}

/** Node's lookup: <dir>/node_modules/<name>, then each parent folder, never above `root`. */
function resolvePackage(root: string, from: string, name: string): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(root, candidate, 'package.json'))) return path.normalize(candidate);
    if (dir === '.' || dir === path.dirname(dir)) return undefined;
  }
}

function readPackage(dir: string): PackageJson {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as PackageJson;
  } catch (error) {
    throw new DeployError('XOP_ERR_PACKAGE', `cannot read ${path.join(dir, 'package.json')}: ${(error as Error).message}`);
  }
}

/** Regular files under root/rel (or rel itself), relative to root; symbolic links are left out. */
function walk(root: string, rel: string, options: { skip?: string } = {}): string[] {
  const stat = statSync(path.join(root, rel), { throwIfNoEntry: false });
  if (!stat) return [];
  if (stat.isFile()) return [path.normalize(rel)];
  if (!stat.isDirectory()) return [];
  const out: string[] = [];
  for (const entry of readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const child = path.join(rel, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== options.skip) out.push(...walk(root, child, options));
    } else if (entry.isFile()) {
      out.push(path.normalize(child));
    }
  }
  return out;
}
