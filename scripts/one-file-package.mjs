// The package.json beside the one-file build (the release tarball, the Debian package, Tails): the
// version the program reports and what it is, no dependencies (they are inside the bundle).
//   node scripts/one-file-package.mjs > DIR/package.json
import { readFileSync } from 'node:fs';

const full = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const { name, version, description, license, engines } = full;
const bin = { 'xmpp-onion-proxy': 'dist/cli/xmpp-onion-proxy.mjs' };
process.stdout.write(`${JSON.stringify({ name, version, description, license, type: 'module', bin, engines }, null, 2)}\n`);
