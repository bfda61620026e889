import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeployError } from './deploy-error.js';

/** The folder holding this daemon's package.json (dist/deploy/… or src/deploy/… → two levels up). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The one-file build (scripts/bundle.mjs): the daemon and every runtime dependency in one file. */
export const ONE_FILE_BUILD = 'dist/cli/xmpp-onion-proxy.mjs';

/**
 * Every file the one-file build needs to run, relative to `root`: package.json (the version),
 * the bundled code, the map and the schemas. No node_modules: plain `node` runs it.
 */
export function oneFileBuildFiles(root = PACKAGE_ROOT): string[] {
  if (!existsSync(path.join(root, ONE_FILE_BUILD))) {
    throw new DeployError('XOP_ERR_NO_BUILD', `${path.join(root, ONE_FILE_BUILD)} is missing: run \`npm run bundle\` in ${root} first (a release already has it)`);
  }
  return ['package.json', ONE_FILE_BUILD, ...walk(root, 'data'), ...walk(root, 'schemas')].sort();
}

/** Regular files under root/rel (or rel itself), relative to root; symbolic links are left out. */
function walk(root: string, rel: string): string[] {
  const stat = statSync(path.join(root, rel), { throwIfNoEntry: false });
  if (!stat) return [];
  if (stat.isFile()) return [path.normalize(rel)];
  if (!stat.isDirectory()) return [];
  const out: string[] = [];
  for (const entry of readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const child = path.join(rel, entry.name);
    if (entry.isDirectory()) {
      out.push(...walk(root, child));
    } else if (entry.isFile()) {
      out.push(path.normalize(child));
    }
  }
  return out;
}
