import type { CheckLine } from './check-line.js';

/** Node.js 20 is the oldest the daemon supports: Tails 7 has 20.19; Tails 6 has 18, which is end of life. */
export const MINIMUM_NODE_MAJOR = 20;

export function checkNodeVersion(version = process.versions.node): CheckLine {
  const major = Number(version.split('.')[0]);
  if (major >= MINIMUM_NODE_MAJOR) return { status: 'ok', text: `Node.js ${version} (${MINIMUM_NODE_MAJOR} or later is needed)` };
  return {
    status: 'fail',
    text: `Node.js ${version} is too old: ${MINIMUM_NODE_MAJOR} or later is needed`,
    fix: major === 18
      ? 'Node.js 18 (what Debian 12 and Tails 6 ship) is end of life and not supported: on Tails, upgrade to Tails 7; on Debian, use Debian 13 or another Node.js 20 or later'
      : `install Node.js ${MINIMUM_NODE_MAJOR} or later`,
  };
}
