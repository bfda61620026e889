// Dino's path, with GIO itself (Dino cannot run headless): the GNOME proxy settings carry its
// connection to the SOCKS door with the domain as a name, but first Dino asks the system
// resolver for the domain's SRV records, outside Tor. The fixture (test/fixtures/dino-connect.py)
// makes Dino's calls; strace watches it, in a private mount namespace whose resolv.conf points
// at 127.0.0.1, so that the lookups are seen and nothing leaves the machine.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { onionFromPublicKey } from '../../src/onionmap/onion-address.js';
import { startDaemonProcess } from '../helpers/daemon-process.js';
import { FEATURES_STARTTLS, startFakeXmppServer } from '../helpers/fake-xmpp.js';
import { SERVER_HEADER } from '../helpers/policy-driver.js';
import { runCommand } from '../helpers/run-command.js';
import { startSocks5Fixture } from '../helpers/socks5-server.js';

const ONION = onionFromPublicKey(Buffer.alloc(32, 7));
// The server behind the onion: its header and features (the test needs nothing after them).
const server = await startFakeXmppServer((socket) => socket.once('data', () => socket.write(SERVER_HEADER + FEATURES_STARTTLS)));
t.teardown(() => server.close());
const tor = await startSocks5Fixture({ resolve: (host) => (host === ONION ? server.port : undefined) });
t.teardown(() => tor.close());
const dir = await mkdtemp(path.join(os.tmpdir(), 'xop-e2e-dino-'));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const mapFile = path.join(dir, 'map.json');
await writeFile(mapFile, JSON.stringify({ 'example.test': { onion: ONION } }));
const daemon = await startDaemonProcess(['--socks', '127.0.0.1:0', '--tor', `127.0.0.1:${tor.port}`, '--map', mapFile]);
t.teardown(() => daemon.stop());

t.test('GIO with the GNOME proxy reaches the SOCKS door by name, after SRV lookups through the system resolver', async (t) => {
  const resolv = path.join(dir, 'resolv.conf');
  await writeFile(resolv, 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
  const trace = path.join(dir, 'strace.log');
  const script = fileURLToPath(new URL('../fixtures/dino-connect.py', import.meta.url));
  const env = { PATH: '/usr/bin:/bin', HOME: dir, LANG: 'C.UTF-8', GSETTINGS_BACKEND: 'memory', GIO_USE_PROXY_RESOLVER: 'gnome', XDG_CURRENT_DESKTOP: 'GNOME' };
  const result = await runCommand('unshare', ['-m', 'sh', '-c', 'mount --bind "$1" /etc/resolv.conf && exec strace -f -qq -e trace=connect,sendto,sendmsg,sendmmsg -o "$2" /usr/bin/python3 "$3"', 'sh', resolv, trace, script], {
    env, timeoutMs: 30_000, input: JSON.stringify({ domain: 'example.test', socksPort: daemon.socksPort }),
  });
  const events = result.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  t.equal(result.code, 0, `${JSON.stringify(events)} ${result.stderr.slice(-1500)}`);
  t.match(events, [
    { event: 'proxy', resolver: 'GProxyResolverGnome', uris: [`socks5://127.0.0.1:${daemon.socksPort}`] },
    { event: 'srv', service: 'xmpp-client', error: /example\.test/ },
    { event: 'srv', service: 'xmpps-client', error: /example\.test/ },
    { event: 'connected', through: /Connection$/ },
    { event: 'features', starttls: true },
  ]);
  t.match(tor.requests, [{ host: ONION, port: 5222, atyp: 'domain' }], 'the door routed the name by the map (an address would have been refused)');
  const syscalls = await readFile(trace, 'utf8');
  const dns = syscalls.split('\n').filter((l) => /htons\(53\)/.test(l));
  t.ok(dns.length >= 2, `the SRV lookups went to the system resolver, outside Tor (${dns.length} DNS sends):\n${dns.slice(0, 4).join('\n')}`);
  t.ok(dns.every((l) => l.includes('inet_addr("127.0.0.1")')), 'in this test, only to 127.0.0.1');
  const tcp = syscalls.split('\n').filter((l) => /connect\(.*SOCK_STREAM|connect\(\d+, \{sa_family=AF_INET, sin_port=htons\((?!53\))/.test(l));
  t.ok(tcp.every((l) => l.includes(`htons(${daemon.socksPort})`) && l.includes('127.0.0.1')), `its only TCP connection is to the SOCKS door:\n${tcp.join('\n')}`);
});
