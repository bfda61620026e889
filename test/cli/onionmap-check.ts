import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import { onionFromPublicKey } from '../../src/onionmap/onion-address.js';
import { startFakeXmppServer, type Script } from '../helpers/fake-xmpp.js';
import { startSocks5Fixture } from '../helpers/socks5-server.js';
import { requireBuild, runCli, tempDir } from './built-cli.js';
import { loadBundledMap } from '../../src/onionmap/bundled.js';

if (!requireBuild(t)) process.exit(1);

const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' version='1.0'>";
const FEATURES_TLS = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>";
const FEATURES_PLAIN = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>";
const HOST_UNKNOWN = "<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>";

/** Answers a client's stream header with `reply`; `null` never answers. */
function answer(reply: string | null): Script {
  return (socket) => {
    let seen = '';
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (reply !== null && seen.includes('<stream:stream') && !seen.includes('\u0000')) {
        seen += '\u0000';
        socket.write(reply);
      }
    });
  };
}

const onion = (): string => onionFromPublicKey(randomBytes(32));
const ONIONS = { alive: onion(), plain: onion(), dead: onion(), unknown: onion(), silent: onion() };

async function setup(t: Test) {
  const alive = await startFakeXmppServer(answer(HEADER + FEATURES_TLS));
  const plain = await startFakeXmppServer(answer(HEADER + FEATURES_PLAIN));
  const unknown = await startFakeXmppServer(answer(HEADER + HOST_UNKNOWN));
  let open = 0;
  let mostOpen = 0;
  const silent = await startFakeXmppServer((socket) => {
    mostOpen = Math.max(mostOpen, ++open);
    socket.on('close', () => open--);
  });
  const servers = [alive, plain, unknown, silent];
  const ports = new Map([[ONIONS.alive, alive.port], [ONIONS.plain, plain.port], [ONIONS.unknown, unknown.port], [ONIONS.silent, silent.port]]);
  const socks = await startSocks5Fixture({ resolve: (host) => ports.get(host) });
  t.teardown(async () => {
    await socks.close();
    await Promise.all(servers.map((s) => s.close()));
  });
  const map = path.join(tempDir(t), 'map.json');
  writeFileSync(map, JSON.stringify({
    'alive.test': { onion: ONIONS.alive },
    'plain.test': { onion: ONIONS.plain },
    'dead.test': { onion: ONIONS.dead },
    'unknown.test': { onion: ONIONS.unknown },
    'silent1.test': { onion: ONIONS.silent },
    'silent2.test': { onion: ONIONS.silent },
    'silent3.test': { onion: ONIONS.silent },
  }));
  return { socks, map, alive, mostOpen: () => mostOpen };
}

t.test('alive, no-starttls and dead, each with its reason in words', async (t) => {
  const { socks, map, alive } = await setup(t);
  const result = await runCli(['onionmap', 'check', 'alive.test', 'plain.test', 'dead.test', 'unknown.test', 'riseup.net',
    '--tor', `127.0.0.1:${socks.port}`, '--map', map, '--timeout', '20']);
  t.equal(result.code, 1, 'not all alive');
  const lines = result.stdout.trimEnd().split('\n');
  t.match(lines[0], new RegExp(`^alive\\s+alive\\.test\\s+${ONIONS.alive}:5222\\s+speaks XMPP and offers STARTTLS \\(required\\)`));
  t.match(lines[1], /^no-starttls\s+plain\.test\s+\S+:5222\s+the server offers no STARTTLS \(only mechanisms\): the daemon would refuse this connection/);
  t.match(lines[2], /^dead\s+dead\.test\s+\S+:5222\s+Tor could not reach the host \(SOCKS reply 0x04\)/);
  t.match(lines[3], /^dead\s+unknown\.test\s+\S+:5222\s+the server answered host-unknown: it does not serve this domain/);
  t.match(lines[4], /^refused\s+riseup\.net\s+-\s+riseup\.net retired its XMPP service/);
  t.equal(lines[5], '5 checked: 1 alive, 1 no-starttls, 2 dead; 1 refused by the map');
  t.notMatch(result.stderr, /\r/, 'no progress line when standard error is not a terminal');

  t.same(socks.requests.map((r) => `${r.host}:${r.port}/${r.atyp}`).sort(), [ONIONS.alive, ONIONS.plain, ONIONS.dead, ONIONS.unknown].map((h) => `${h}:5222/domain`).sort(),
    'Tor was asked for each onion by name, port 5222, and never for the retired one');
  t.equal(new Set(socks.requests.map((r) => r.password)).size, 4, 'each probe on its own circuit (its own SOCKS key)');
  t.match(alive.connections[0]?.plaintext.toString(), /^<\?xml version='1\.0'\?><stream:stream xmlns='jabber:client' xmlns:stream='http:\/\/etherx\.jabber\.org\/streams' to='alive\.test' version='1\.0'>/,
    'the probe sent a client stream header for the domain');
  t.notMatch(alive.connections[0]?.plaintext.toString(), /starttls|auth/, 'and nothing more than the header and its close');
});

t.test('exit 0 when everything checked is alive; JSON output', async (t) => {
  const { socks, map } = await setup(t);
  const result = await runCli(['onionmap', 'check', 'alive.test', '--tor', `127.0.0.1:${socks.port}`, '--map', map, '--json']);
  t.equal(result.code, 0);
  t.match(JSON.parse(result.stdout), [{ domain: 'alive.test', kind: 'alive', required: true, route: { kind: 'onion', host: ONIONS.alive, port: 5222 } }]);
});

t.test('bounded: each entry within --timeout, at most --parallel at once', async (t) => {
  const { socks, map, mostOpen } = await setup(t);
  const started = Date.now();
  const result = await runCli(['onionmap', 'check', 'silent1.test', 'silent2.test', 'silent3.test',
    '--tor', `127.0.0.1:${socks.port}`, '--map', map, '--timeout', '1', '--parallel', '2']);
  t.equal(result.code, 1);
  t.equal(result.stdout.match(/^dead\s+silent\d\.test\s+\S+\s+no answer within 1 second/gm)?.length, 3, 'three timeouts');
  t.equal(mostOpen(), 2, 'never more than two connections open at once');
  t.ok(Date.now() - started < 15_000, 'done in bounded time');
});

t.test('without domains: every routable entry, retired ones left out', async (t) => {
  const { socks, map } = await setup(t);
  const result = await runCli(['onionmap', 'check', '--tor', `127.0.0.1:${socks.port}`, '--map', map, '--timeout', '2', '--parallel', '16']);
  t.equal(result.code, 1);
  // The bundled entries but the retired ones, plus the 7 test entries.
  const bundled = loadBundledMap();
  const retired = bundled.filter((e) => e.status === 'retired').length;
  const checked = bundled.length - retired + 7;
  t.equal(retired, 5);
  t.match(result.stdout, new RegExp(`\n${checked} checked: 1 alive, 1 no-starttls, ${checked - 2} dead; ${retired} retired entries not checked\n$`));
  t.notOk(socks.requests.some((r) => r.host.startsWith('jukrlvyh')), 'the retired Riseup onion is never contacted');
  t.ok(socks.requests.some((r) => r.host === 'jabber.calyxinstitute.org'), 'a no-onion entry is checked through the exit');
});

t.test('usage errors exit 2', async (t) => {
  for (const args of [['--parallel', '0'], ['--timeout', 'soon'], ['--tor', 'localhost'], ['bad@jid.test']]) {
    const result = await runCli(['onionmap', 'check', ...args]);
    t.equal(result.code, 2, args.join(' '));
  }
  const noTor = await runCli(['onionmap', 'check', 'xmpp.is', '--tor', 'unix:/nonexistent/socks', '--timeout', '5']);
  t.equal(noTor.code, 1);
  t.match(noTor.stdout, /dead\s+xmpp\.is\s+\S+\s+Tor is not running at unix:\/nonexistent\/socks \(no such socket\)/);
});
