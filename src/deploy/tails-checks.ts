import { readFileSync, statSync } from 'node:fs';
import type { CheckLine } from './check-line.js';
import { checkNodeVersion } from './node-version.js';
import type { TailsLayout } from './tails-layout.js';

const ADDITIONAL_SOFTWARE_FIX =
  'set an administration password in the Welcome Screen, then in a Terminal run `sudo apt update && sudo apt install nodejs` ' +
  'and choose "Install Every Time" when Tails offers it (or add nodejs in Persistent Storage › Additional Software)';

/** Everything `tails setup` needs before it writes anything. */
export function checkTails(layout: TailsLayout, nodeVersion = process.versions.node): CheckLine[] {
  if (!isDirectory(layout.root)) {
    return [{
      status: 'fail',
      text: `no unlocked Persistent Storage at ${layout.root}`,
      fix: 'restart Tails and unlock your Persistent Storage in the Welcome Screen (or create one: Applications › Tails › Persistent Storage), then run this again',
    }];
  }
  return [
    { status: 'ok', text: `Persistent Storage is unlocked (${layout.root})` },
    checkNodeVersion(nodeVersion),
    feature(layout.dotfiles, 'Dotfiles', 'it makes the autostart entry last across restarts'),
    feature(layout.persistentFolder, 'Persistent Folder', 'the daemon is kept there'),
    checkAdditionalSoftware(layout.additionalSoftware),
  ];
}

function feature(dir: string, name: string, why: string): CheckLine {
  if (isDirectory(dir)) return { status: 'ok', text: `the ${name} feature is on` };
  return { status: 'fail', text: `the ${name} feature is off (no ${dir}); ${why}`, fix: `turn on ${name} in Applications › Tails › Persistent Storage, then run this again` };
}

/** `nodejs` among the packages that Additional Software installs at every start. */
export function checkAdditionalSoftware(file: string): CheckLine {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { status: 'fail', text: 'Additional Software has no packages: nodejs would be gone after a restart', fix: ADDITIONAL_SOFTWARE_FIX };
    return { status: 'warn', text: `cannot read ${file} (${code ?? 'error'}): make sure nodejs is listed in Persistent Storage › Additional Software` };
  }
  const packages = text.split('\n').map((line) => line.replace(/#.*/, '').trim().split(/[\s=/:]/)[0]).filter(Boolean);
  if (packages.includes('nodejs')) return { status: 'ok', text: 'nodejs is in your Additional Software (installed at every start)' };
  return { status: 'fail', text: 'nodejs is not in your Additional Software: it would be gone after a restart', fix: ADDITIONAL_SOFTWARE_FIX };
}

function isDirectory(dir: string): boolean {
  return statSync(dir, { throwIfNoEntry: false })?.isDirectory() === true;
}
