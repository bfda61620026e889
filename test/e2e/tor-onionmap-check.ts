// `xmpp-onion-proxy onionmap check`, the built binary, through real Tor: the private Tor network
// on 127.0.0.1 (test/helpers/tor-shared.ts) and its ExtendedErrors SOCKS port. Four domains are
// named on the command line, so only they are checked: never the bundled map's real onions (the
// private network has no route to the public Tor network anyway, and every address given here is
// 127.0.0.1).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { requireBuild, runCli, tempDir } from '../cli/built-cli.js';
import { createTestPki } from '../helpers/certs.js';
import { honestScript, startFakeXmppServer, type FakeXmppServer } from '../helpers/fake-xmpp.js';
import { FEATURES_PLAIN_ONLY, SERVER_HEADER } from '../helpers/policy-driver.js';
import { randomOnionAddress } from '../helpers/tor-network.js';
import { claimTarget, useTorNetwork } from '../helpers/tor-shared.js';

if (!requireBuild(t)) process.exit(1);

const tor = await useTorNetwork(t);
t.comment(`private Tor network up in ${tor.startupMs} ms (shared: ${tor.shared})`);

const unknownOnion = randomOnionAddress();
const DOMAINS = ['alive.test', 'stripped.test', 'down.test', 'unknown.test'] as const;
let honest: FakeXmppServer;
let stripping: FakeXmppServer;
let mapFile: string;
let dir: string;

t.before(async () => {
  dir = tempDir(t);
  const pki = await createTestPki(path.join(dir, 'pki'), ['alive.test']);
  // fake1: an honest STARTTLS server; fake2: one that strips STARTTLS and offers PLAIN.
  honest = await startFakeXmppServer(honestScript(pki.serverKey, pki.serverCert), await claimTarget(t, tor, 'fake1'));
  t.teardown(() => honest.close());
  stripping = await startFakeXmppServer((socket) => socket.once('data', () => socket.write(SERVER_HEADER + FEATURES_PLAIN_ONLY)), await claimTarget(t, tor, 'fake2'));
  t.teardown(() => stripping.close());
  mapFile = path.join(dir, 'map.json');
  writeFileSync(mapFile, JSON.stringify({
    'alive.test': { onion: tor.onions.fake1 },
    'stripped.test': { onion: tor.onions.fake2 },
    'down.test': { onion: tor.onions.down },
    'unknown.test': { onion: unknownOnion },
  }));
});

const check = (...extra: string[]) => runCli(['onionmap', 'check', ...DOMAINS, '--tor', `127.0.0.1:${tor.socksPort}`, '--map', mapFile, '--timeout', '120', ...extra]);

const re = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

t.test('alive, no-starttls, dead (down) and dead (no descriptor), with Tor\'s reasons in words', async (t) => {
  const started = Date.now();
  const result = await check();
  t.comment(`onionmap check took ${Date.now() - started} ms:\n${result.stdout}`);
  t.equal(result.code, 1, 'exit 1: not every entry is alive');
  const lines = result.stdout.trimEnd().split('\n');
  t.equal(lines.length, 5, 'four rows and the summary: only the named domains were checked');
  t.match(lines[0], new RegExp(`^alive\\s+alive\\.test\\s+${re(tor.onions.fake1)}:5222\\s+speaks XMPP and offers STARTTLS \\(required\\) \\(\\d+\\.\\d s\\)$`));
  t.match(lines[1], new RegExp(`^no-starttls\\s+stripped\\.test\\s+${re(tor.onions.fake2)}:5222\\s+the server offers no STARTTLS \\(only mechanisms\\): the daemon would refuse this connection`));
  t.match(lines[2], new RegExp(`^dead\\s+down\\.test\\s+${re(tor.onions.down)}:5222\\s+${re('Tor could not connect to the onion service (general failure: the service may be down, or not serving this port) (SOCKS reply 0x01)')}`));
  t.match(lines[3], new RegExp(`^dead\\s+unknown\\.test\\s+${re(unknownOnion)}:5222\\s+Tor found no descriptor for this onion service: it is offline, gone, or the address is wrong \\(SOCKS reply 0xf0\\)`));
  t.equal(lines[4], '4 checked: 1 alive, 1 no-starttls, 2 dead');
  t.equal(result.stderr, '', 'nothing on standard error (no progress line off a terminal)');

  t.equal(honest.connections.length, 1, 'the honest server was reached once');
  const sent = honest.connections[0]?.plaintext.toString() ?? '';
  t.match(sent, /^<\?xml version='1\.0'\?><stream:stream xmlns='jabber:client' xmlns:stream='http:\/\/etherx\.jabber\.org\/streams' to='alive\.test' version='1\.0'>/,
    'through the onion came a client stream header for the domain');
  t.notMatch(sent, /starttls|auth/, 'and nothing more than the header and its close');
  t.equal(stripping.connections.length, 1, 'the stripping server was reached once');
  t.notOk(stripping.connections[0]?.plaintext.toString().includes('<auth'), 'no authentication was tried on the stripping server');
});

t.test('--json: the same verdicts', async (t) => {
  const result = await check('--json');
  t.equal(result.code, 1);
  const parsed = JSON.parse(result.stdout) as Array<Record<string, unknown>>;
  t.match(parsed, [
    { domain: 'alive.test', kind: 'alive', required: true, route: { kind: 'onion', host: tor.onions.fake1, port: 5222 } },
    { domain: 'stripped.test', kind: 'no-starttls', words: /offers no STARTTLS/, route: { host: tor.onions.fake2 } },
    { domain: 'down.test', kind: 'dead', reason: 'socks-general-failure', words: /Tor could not connect to the onion service/, route: { host: tor.onions.down } },
    { domain: 'unknown.test', kind: 'dead', reason: 'onion-not-found', words: /Tor found no descriptor for this onion service/, route: { host: unknownOnion } },
  ]);
  t.equal(parsed.length, 4, 'only the named domains');
  t.ok(parsed.every((r) => typeof r.ms === 'number'), 'each with its time');
});
