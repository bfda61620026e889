import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { onionFromPublicKey } from '../../src/onionmap/onion-address.js';
import { startFakeXmppServer } from '../helpers/fake-xmpp.js';
import { freePort } from '../helpers/ports.js';
import { startSocks5Fixture } from '../helpers/socks5-server.js';
import { clientHeader, connect, readUntil, STARTTLS } from '../helpers/xmpp-wire.js';
import { requireBuild, startDaemonProcess, tempDir } from './built-cli.js';
import { loadBundledMap } from '../../src/onionmap/bundled.js';

const BUNDLED = loadBundledMap().length;

if (!requireBuild(t)) process.exit(1);

const HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='example.test' id='s1' version='1.0'>";
const FEATURES = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>";
const PROCEED = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
const FIRST = onionFromPublicKey(randomBytes(32));
const SECOND = onionFromPublicKey(randomBytes(32));

t.test('SIGHUP: new connections take the new map, open ones survive, a bad file keeps the old map', async (t) => {
  // Answers the header with features and <starttls/> with <proceed/>, then holds the connection.
  const server = await startFakeXmppServer((socket) => {
    let seen = '';
    socket.on('data', (chunk: Buffer) => {
      const before = seen;
      seen += chunk.toString();
      if (!before.includes('<stream:stream') && seen.includes('<stream:stream')) socket.write(HEADER + FEATURES);
      if (!before.includes('<starttls') && seen.includes('<starttls')) socket.write(PROCEED);
    });
  });
  t.teardown(() => server.close());
  const socks = await startSocks5Fixture({ resolve: (host) => (host === FIRST || host === SECOND ? server.port : undefined) });
  t.teardown(() => socks.close());
  const map = path.join(tempDir(t), 'map.json');
  const writeMap = (onion: string): void => writeFileSync(map, JSON.stringify({ 'example.test': { onion } }));
  writeMap(FIRST);

  const port = await freePort();
  const daemon = startDaemonProcess(t, ['--listen', `127.0.0.1:${port}`, '--tor', `127.0.0.1:${socks.port}`, '--map', map]);
  const started = await daemon.waitFor((l) => l.port === port);
  t.match(started, { level: 30, layers: ['bundled', 'map'], entries: BUNDLED + 1 }, 'listening, the --map layer over the bundled map');

  // A connection that stays open mid-negotiation: features received, STARTTLS not yet asked for.
  const old = await connect(port);
  t.teardown(() => old.destroy());
  old.write(clientHeader('example.test'));
  await readUntil(old, (r) => r.includes('</stream:features>'));
  t.equal(socks.requests.at(-1)?.host, FIRST, 'routed by the first map');
  let oldClosed = false;
  old.on('close', () => (oldClosed = true));

  writeMap(SECOND);
  let mark = daemon.lines.length;
  daemon.child.kill('SIGHUP');
  const reloaded = await daemon.waitFor((l) => l.msg === 'map reloaded', mark);
  t.match(reloaded, { level: 30, entries: BUNDLED + 1, layers: ['bundled', 'map'] });

  const fresh = await connect(port);
  t.teardown(() => fresh.destroy());
  fresh.write(clientHeader('example.test'));
  await readUntil(fresh, (r) => r.includes('</stream:features>'));
  t.equal(socks.requests.at(-1)?.host, SECOND, 'a new connection takes the new route');
  fresh.destroy();

  t.notOk(oldClosed, 'the old connection is still open');
  old.write(STARTTLS);
  t.match(await readUntil(old, (r) => r.includes('<proceed')), /<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'\/>/, 'and still negotiates with its first server');
  t.match(server.connections[0]?.plaintext.toString(), /<starttls/, 'on the same upstream connection');

  // An invalid rewrite: one character of the onion changed.
  writeMap(`${SECOND[0] === 'a' ? 'b' : 'a'}${SECOND.slice(1)}`);
  mark = daemon.lines.length;
  daemon.child.kill('SIGHUP');
  const failed = await daemon.waitFor((l) => l.msg === 'map reload failed; keeping the previous map', mark);
  t.equal(failed.level, 50, 'logged at error level');
  t.match(failed, { problems: 1, err: { type: 'MapFileError', code: 'XOP_ERR_MAP_FILE' } });
  t.match((failed.err as { message: string }).message, new RegExp(`^${map}: example\\.test: ".*" has a wrong checksum`), 'why: the file, the domain and the problem');

  const third = await connect(port);
  t.teardown(() => third.destroy());
  third.write(clientHeader('example.test'));
  await readUntil(third, (r) => r.includes('</stream:features>'));
  t.equal(socks.requests.at(-1)?.host, SECOND, 'the previous map stays in force');
  third.destroy();
  t.notOk(oldClosed, 'the old connection survived the failed reload too');

  const infoLines = daemon.raw().split('\n').filter((line) => line.includes('"level":30'));
  t.ok(infoLines.some((line) => line.includes('listening on')) && infoLines.some((line) => line.includes('map reloaded')), 'the start-up and reload lines are info lines');
  t.notOk(infoLines.some((line) => /example\.test|\.onion/.test(line)), 'no domain or onion in any info line');

  mark = daemon.lines.length;
  daemon.child.kill('SIGTERM');
  t.equal(await daemon.exited, 0, 'SIGTERM: exit code 0');
  t.ok(daemon.lines.slice(mark).some((l) => l.msg === 'stopping'));
});

t.test('an invalid system or user file stops the daemon from starting, naming the file', async (t) => {
  const dir = tempDir(t);
  const user = path.join(dir, 'user.json');
  writeFileSync(user, JSON.stringify({ 'calyx.test': { onion: 'ijeeynrc6x2uy5ob.onion' } }));
  const port = await freePort();
  const daemon = startDaemonProcess(t, ['--listen', `127.0.0.1:${port}`, '--tor', '127.0.0.1:9'], { XMPP_ONION_PROXY_USER_MAP: user });
  t.equal(await daemon.exited, 2, 'exit 2: a configuration problem');
  t.match(daemon.raw(), new RegExp(`invalid map ${user}: calyx\\.test: .*v2 onions no longer work`));
});
