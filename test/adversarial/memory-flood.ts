// The heap blow-up found from outside (issue 13, item 0), against the built daemon: thousands of
// connections, each at the pre-TLS byte bound on both sides in the shape that keeps the most in
// memory (an element left open with 127 children of long names, under every limit), with a
// server that never finishes. The daemon's RSS must stay within --pre-tls-memory of where it
// started, the connections past the bound get resource-constraint, and an honest TLS session
// open throughout keeps working.
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import { createTestCa, issueServerCert } from '../helpers/certs.js';
import { honestScript, startFakeXmppServer } from '../helpers/fake-xmpp.js';
import { freePort } from '../helpers/ports.js';
import { startSocks5Fixture } from '../helpers/socks5-server.js';
import { clientHeader, connect, readUntil, STARTTLS } from '../helpers/xmpp-wire.js';
import { until } from '../helpers/adversary-scenario.js';
import { ensureFileLimit } from '../helpers/adversary-scenarios-resources.js';
import { requireBuild, startDaemonProcess, tempDir } from '../cli/built-cli.js';
import { DEFAULT_XML_LIMITS } from '../../src/policy/xml-events.js';
import { negotiationSlots, negotiationWorstBytes } from '../../src/proxy/negotiation-memory.js';

if (!requireBuild(t)) process.exit(1);

const FLOOD = 3200;
const MEMORY_MIB = 64;
/** The daemon's V8 old space: its own few tens of MiB and the bound, with room for garbage. */
const HEAP_CAP_MIB = 192;
const SLOTS = negotiationSlots(MEMORY_MIB * 2 ** 20, DEFAULT_XML_LIMITS);
const SERVER_HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='flood.test' id='f' version='1.0'>";
const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';

/** 127 children with names of 245 two-byte characters, inside an element left open: under every limit, as much kept as can be. */
function openElementAtTheBound(open: string): string {
  const children = Array.from({ length: 127 }, (_, i) => `<n${i}${'é'.repeat(245)}/>`).join('');
  const text = open + children;
  if (Buffer.byteLength(text) > DEFAULT_XML_LIMITS.maxBytes - 1024) throw new Error('the flood shape is over the byte bound');
  return text;
}

const CLIENT_FLOOD = clientHeader('flood.test') + openElementAtTheBound(`<starttls xmlns='${NS_TLS}'>`);
const SERVER_FLOOD = SERVER_HEADER + openElementAtTheBound('<stream:features>');

function rssBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1]) * 1024;
}

/** Bytes still queued in the kernel on any loopback TCP socket that touches `ports`: 0 once every byte sent was read. */
function queuedBytes(ports: ReadonlySet<number>): number {
  let queued = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 5) continue;
      const local = parseInt(fields[1]!.split(':')[1]!, 16);
      const remote = parseInt(fields[2]!.split(':')[1]!, 16);
      if (!ports.has(local) && !ports.has(remote)) continue;
      const [tx, rx] = fields[4]!.split(':').map((h) => parseInt(h, 16));
      queued += (tx ?? 0) + (rx ?? 0);
    }
  }
  return queued;
}

t.test(`${FLOOD} connections at the byte bound on both sides: RSS stays within --pre-tls-memory, an honest session lives`, async (t) => {
  ensureFileLimit(3 * FLOOD);
  const ca = await createTestCa();
  const leaf = await issueServerCert(ca, ['honest.test']);
  const honest = await startFakeXmppServer(honestScript(leaf.keyPem, leaf.certPem));
  t.teardown(() => honest.close());
  let floodServers = 0;
  const flood = await startFakeXmppServer((socket) => {
    socket.once('data', () => {
      floodServers++;
      socket.write(SERVER_FLOOD);
    });
  });
  t.teardown(() => flood.close());
  const socks = await startSocks5Fixture({ resolve: (host) => (host === 'xmpp.honest.test' ? honest.port : host === 'xmpp.flood.test' ? flood.port : undefined) });
  t.teardown(() => socks.close());
  const map = path.join(tempDir(t), 'map.json');
  writeFileSync(map, JSON.stringify({ 'honest.test': { host: 'xmpp.honest.test' }, 'flood.test': { host: 'xmpp.flood.test' } }));
  const port = await freePort();
  // The V8 heap capped near what the bound needs: had the connections held more (2.8 MiB each
  // before the fix), the daemon would abort with "heap out of memory", as it did from outside.
  const daemon = startDaemonProcess(t, ['--listen', `127.0.0.1:${port}`, '--tor', `127.0.0.1:${socks.port}`, '--map', map,
    '--max-connections', String(2 * FLOOD), '--header-timeout', '600', '--negotiation-timeout', '600', '--no-control'],
  { NODE_OPTIONS: `--max-old-space-size=${HEAP_CAP_MIB}` });
  await daemon.waitFor((l) => l.port === port);
  const pid = daemon.child.pid!;

  // The honest session: TLS established and verified before the flood.
  const raw = await connect(port);
  t.teardown(() => raw.destroy());
  raw.write(clientHeader('honest.test'));
  await readUntil(raw, (r) => r.includes('</stream:features>'));
  raw.removeAllListeners('data');
  raw.write(STARTTLS);
  await readUntil(raw, (r) => r.includes('<proceed'));
  raw.removeAllListeners('data');
  const secure = tls.connect({ socket: raw, servername: 'honest.test', ca: ca.certPem });
  await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
  const echo = async (text: string): Promise<string> => {
    secure.write(text);
    let got = '';
    await new Promise<void>((resolve) => {
      const onData = (d: Buffer): void => {
        got += d.toString();
        if (got.length >= text.length) {
          secure.removeListener('data', onData);
          resolve();
        }
      };
      secure.on('data', onData);
    });
    return got;
  };
  t.equal(await echo('before'), 'before', 'the honest session relays before the flood');

  const ports = new Set([port, socks.port, flood.port]);
  const clients: net.Socket[] = [];
  t.teardown(() => clients.forEach((c) => c.destroy()));
  /** `count` flood connections; resolves once the daemon has read every byte and written every refusal. */
  const floodWith = async (count: number, onRss: (rss: number) => void): Promise<string[]> => {
    const texts: string[] = [];
    const reachedBefore = floodServers;
    for (let i = 0; i < count; i += 200) {
      const batch = await Promise.all(Array.from({ length: Math.min(200, count - i) }, () => connect(port)));
      for (const c of batch) {
        const index = texts.push('') - 1;
        c.on('data', (d: Buffer) => (texts[index] += d.toString()));
        c.on('error', () => {});
        c.write(CLIENT_FLOOD);
        clients.push(c);
      }
    }
    const negotiating = Math.min(count, SLOTS);
    await until(() => floodServers - reachedBefore >= negotiating, 'the flood servers reached', 60_000);
    await until(() => {
      onRss(rssBytes(pid));
      return queuedBytes(ports) === 0 && texts.filter((x) => x.includes('</stream:stream>')).length === count - negotiating;
    }, 'every byte read and every refusal written', 60_000);
    onRss(rssBytes(pid));
    return texts;
  };
  /** Ends every flood connection; resolves once the daemon has let each negotiating one go (its server side closed). */
  const endFlood = async (negotiating: number): Promise<void> => {
    for (const c of clients.splice(0)) c.destroy();
    for (let i = 0; i < negotiating; i++) await flood.nextClosed();
  };

  // A first flood at the bound and its end: the heap grows to its working size once (young
  // generation, code), so that what the second one adds is what the connections hold.
  await floodWith(SLOTS, () => {});
  await endFlood(SLOTS);
  floodServers = 0;
  const before = rssBytes(pid);
  let peak = before;
  const texts = await floodWith(FLOOD, (rss) => (peak = Math.max(peak, rss)));
  const grown = peak - before;
  const bound = MEMORY_MIB * 2 ** 20;
  t.ok(grown <= bound, `RSS grew by ${(grown / 2 ** 20).toFixed(1)} MiB for ${SLOTS} connections at the bound (at most ${MEMORY_MIB} MiB; ${(negotiationWorstBytes(DEFAULT_XML_LIMITS) / 1024).toFixed(0)} KiB each at worst)`);
  t.ok(grown / SLOTS <= negotiationWorstBytes(DEFAULT_XML_LIMITS), 'per negotiating connection, within the stated worst case');
  t.comment(`RSS ${(before / 2 ** 20).toFixed(1)} MiB before, ${(peak / 2 ** 20).toFixed(1)} MiB at the peak; ${((grown / SLOTS) / 1024).toFixed(1)} KiB per negotiating connection`);
  const refused = texts.filter((x) => x.includes('<resource-constraint ') && x.includes(`already setting up ${SLOTS} connections`)).length;
  t.equal(refused, FLOOD - SLOTS, `the ${FLOOD - SLOTS} past the bound got resource-constraint, in words`);
  t.equal(floodServers, SLOTS, `only ${SLOTS} reached a server`);
  t.equal(await echo('during'), 'during', 'the honest session still relays during the flood');
  t.equal(daemon.child.exitCode, null, 'the daemon is alive');

  await endFlood(SLOTS);
  const fresh = await connect(port);
  t.teardown(() => fresh.destroy());
  fresh.write(clientHeader('honest.test'));
  const answer = await readUntil(fresh, (r) => r.includes('</stream:features>') || r.includes('</stream:stream>'));
  t.ok(answer.includes('</stream:features>'), 'after the flood, a new client is served');
  secure.destroy();
});
