// Writes xmpp-onion-proxy(1) in roff to stdout, from the commands' own --help:
//   node scripts/man-page.mjs PATH/TO/xmpp-onion-proxy.mjs VERSION
import { execFileSync } from 'node:child_process';

const [cli, version] = process.argv.slice(2);
const help = (...args) => execFileSync(process.execPath, [cli, ...args, '--help'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '78' } });
const roff = (text) => text.replace(/\\/g, '\\e').split('\n').map((line) => (/^[.']/.test(line) ? `\\&${line}` : line)).join('\n');
const sections = [
  ['xmpp-onion-proxy', []],
  ['doctor', ['doctor']],
  ['configure', ['configure']],
  ['onionmap', ['onionmap']],
  ['tails', ['tails']],
  ['status', ['status']],
  ['monitor', ['monitor']],
  ['reload', ['reload']],
];
const date = new Date().toISOString().slice(0, 10);
const out = [
  `.TH XMPP-ONION-PROXY 1 ${date} "xmpp-onion-proxy ${version}" "User Commands"`,
  '.SH NAME',
  'xmpp-onion-proxy \\- XMPP through Tor, to onion services, refusing every stream without STARTTLS',
  '.SH DESCRIPTION',
  'A daemon on loopback between an XMPP client and its server. Every connection goes through Tor; only the STARTTLS negotiation passes in clear, and every other stream is refused with a stream error that says why. What follows is the help of each command.',
];
for (const [title, args] of sections) {
  out.push(`.SH ${title === 'xmpp-onion-proxy' ? 'OPTIONS' : `COMMAND: ${title.toUpperCase()}`}`, '.nf', roff(help(...args).trimEnd()), '.fi');
}
out.push('.SH FILES', '/etc/xmpp-onion-proxy/config.json: the service\'s configuration.', '.br', '/usr/lib/xmpp-onion-proxy/data/onions.json: the bundled onion map.');
out.push('.SH SEE ALSO', '.BR tor (1)');
process.stdout.write(`${out.join('\n')}\n`);
