import { writeFileSync } from 'node:fs';
import t from 'tap';
import type { EventMessage, ReloadMessage, SnapshotMessage } from '../../src/control/protocol.js';
import { requireBuild } from '../cli/built-cli.js';
import { clientHeader, connect, readToClose, readUntil, starttlsClient } from '../helpers/xmpp-wire.js';
import { CLEAR_DOMAIN, ONION, ONION_DOMAIN, refusedConnection, runCli, setup, until, watcher } from './fixture.js';
import { loadBundledMap } from '../../src/onionmap/bundled.js';

const BUNDLED = loadBundledMap().length;

if (!requireBuild(t)) process.exit(1);

const AUTH = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>";
const MESSAGE = "<message to='bob@example.test'><body>secret words</body></message>";
/** Nothing of the traffic may reach a control message: JIDs, credentials, bodies. */
const NEVER = /alice|bob@|AGFsaWNl|secret/;

/** Header, features, then `stanza` before TLS: refused; resolves when the daemon has closed. */
async function refusedAfterFeatures(port: number, domain: string, stanza: string): Promise<void> {
  const socket = await connect(port);
  const closed = readToClose(socket);
  socket.write(clientHeader(domain, ` from='alice@${domain}'`));
  await readUntil(socket, (r) => r.includes('</stream:features>'));
  socket.write(stanza);
  await closed;
}

t.test('status after good and refused connections; event order; domains only when asked', async (t) => {
  const { daemon, socket, caCert } = await setup(t);
  const { messages, events } = await watcher(t, socket);
  const idsOf = (event: EventMessage['event']): number[] => events().filter((e) => e.event === event).map((e) => e.id);

  // 1: to the onion, TLS, stays open.
  const kept = await starttlsClient(daemon.port, ONION_DOMAIN, caCert);
  t.teardown(() => kept.secure.destroy());
  kept.secure.write('hello');
  await readUntil(kept.secure, (r) => r === 'hello');
  // 2: through "an exit", TLS, echo, then closed by the client.
  const done = await starttlsClient(daemon.port, CLEAR_DOMAIN, caCert);
  done.secure.write('ping over TLS');
  await readUntil(done.secure, (r) => r === 'ping over TLS');
  done.secure.end();
  // 3, 4, 5: refused.
  await refusedAfterFeatures(daemon.port, ONION_DOMAIN, AUTH);
  await refusedAfterFeatures(daemon.port, CLEAR_DOMAIN, MESSAGE);
  await refusedConnection(daemon.port);
  await until(() => idsOf('closed').length === 4, 'four closed events');

  const accepted = idsOf('accepted');
  t.equal(accepted.length, 5, 'five connections accepted');
  const [keptId, doneId, authId, messageId, doctypeId] = accepted as [number, number, number, number, number];
  const story = (id: number): string[] => events().filter((e) => e.id === id).map((e) => e.event);
  t.same(story(keptId), ['accepted', 'routed', 'tls-started'], 'open connection: accepted, routed, TLS started');
  t.same(story(doneId), ['accepted', 'routed', 'tls-started', 'closed'], 'good connection: accepted, routed, TLS started, closed');
  t.same(story(authId), ['accepted', 'routed', 'refused', 'closed'], 'refused after routing');
  t.same(story(doctypeId), ['accepted', 'refused', 'closed'], 'refused before any route');
  const byId = (id: number, event: string): EventMessage => events().find((e) => e.id === id && e.event === event)!;
  t.match(byId(keptId, 'routed'), { route: 'onion', mode: 'starttls' });
  t.match(byId(doneId, 'routed'), { route: 'clearnet', mode: 'starttls' });
  t.notOk('domain' in byId(keptId, 'routed'), 'no domain in events unless asked');
  t.match(byId(authId, 'refused'), { reason: 'client-plaintext-auth' });
  t.match(byId(messageId, 'refused'), { reason: 'client-stanza-before-tls' });
  t.match(byId(doctypeId, 'refused'), { reason: 'client-restricted-xml' });
  const closed = byId(doneId, 'closed');
  t.ok(closed.event === 'closed' && closed.fromClient > 13 && closed.fromServer > 13 && closed.ms >= 0, 'closed with bytes both ways and a duration');
  for (const e of events()) t.ok(e.version === 1 && typeof e.at === 'number', `event ${e.event} #${e.id} has version and time`);

  const json = await runCli(['status', '--json', '--control', socket]);
  t.equal(json.code, 0, 'status --json: exit 0');
  const snapshot = JSON.parse(json.stdout) as SnapshotMessage;
  t.match(snapshot, {
    type: 'snapshot',
    version: 1,
    daemon: { version: /^\d+\.\d+\.\d+/, pid: daemon.child.pid },
    tor: { reachable: true, endpoint: /^127\.0\.0\.1:\d+$/ },
    map: { generation: 1, entries: BUNDLED + 1 },
    doors: [{ door: 'connect-server', host: '127.0.0.1', port: daemon.port }],
    counters: {
      accepted: 5,
      open: 1,
      relaying: 1,
      refused: { 'client-plaintext-auth': 1, 'client-stanza-before-tls': 1, 'client-restricted-xml': 1 },
      refusedTotal: 3,
    },
    connectionsOmitted: 0,
    control: { path: socket, maxClients: 8 },
  });
  t.equal(Object.keys(snapshot.counters.refused).length, 3, 'no other refusal');
  t.ok(snapshot.daemon.uptimeMs > 0 && snapshot.daemon.rssBytes > 1_000_000, 'uptime and memory');
  t.ok(snapshot.counters.bytesFromClient > 13 && snapshot.counters.bytesFromServer > 13, 'bytes of the closed connections counted both ways');
  t.equal(snapshot.connections.length, 1);
  t.match(snapshot.connections[0], { id: keptId, door: 'connect-server', route: 'onion', mode: 'starttls', state: 'relaying' });
  t.ok(snapshot.connections[0]!.ageMs >= 0);
  t.notOk('domain' in snapshot.connections[0]!, 'no domain unless asked');
  t.same(snapshot.recentRefusals.map((r) => r.reason), ['client-plaintext-auth', 'client-stanza-before-tls', 'client-restricted-xml'], 'recent refusals, oldest first');
  t.equal(snapshot.control.clients.length, 2, 'the watcher and this status command');

  const withDomains = JSON.parse((await runCli(['status', '--json', '--domains', '--control', socket])).stdout) as SnapshotMessage;
  t.equal(withDomains.connections[0]?.domain, ONION_DOMAIN, '--domains: the domain is shown');
  t.notMatch(JSON.stringify(withDomains), ONION, 'the onion address itself is never shown');

  const table = await runCli(['status', '--control', socket]);
  t.equal(table.code, 0);
  t.match(table.stdout, /^accepted +5$/m);
  t.match(table.stdout, /^relaying +1$/m);
  t.match(table.stdout, /^refused +3 \(client-plaintext-auth 1, client-restricted-xml 1, client-stanza-before-tls 1\)$/m);
  t.match(table.stdout, new RegExp(`^map +generation 1, ${BUNDLED + 1} entries$`, 'm'));
  t.match(table.stdout, /^Tor +127\.0\.0\.1:\d+: SOCKS5 answers$/m);
  t.match(table.stdout, new RegExp(`^${keptId} +connect-server +onion +starttls +relaying +\\S+$`, 'm'), 'the open connection as a row');
  t.notMatch(table.stdout, new RegExp(ONION_DOMAIN.replace('.', '\\.')), 'no domain in the table unless asked');

  t.notMatch(JSON.stringify(messages) + json.stdout + table.stdout, NEVER, 'no JID, credential or body in any control message');
  t.notMatch(daemon.rawLogs(), NEVER, 'nor in the log');
});

t.test('reload: the same path as SIGHUP, answered with the new generation or the error', async (t) => {
  const { daemon, socket, mapFile } = await setup(t);
  writeFileSync(mapFile, JSON.stringify({ [ONION_DOMAIN]: { onion: ONION }, 'another.test': { host: 'xmpp.another.test' } }));
  const ok = await runCli(['reload', '--control', socket]);
  t.equal(ok.code, 0, 'exit 0');
  t.equal(ok.stdout, `map reloaded: generation 2, ${BUNDLED + 2} entries (layers: bundled, map)\n`);
  await daemon.waitForLog((l) => l.msg === 'map reloaded' && l.entries === BUNDLED + 2);

  const json = await runCli(['reload', '--json', '--control', socket]);
  t.match(JSON.parse(json.stdout) as ReloadMessage, { type: 'reload', version: 1, ok: true, generation: 3, entries: BUNDLED + 2, layers: ['bundled', 'map'] }, 'reload --json');

  writeFileSync(mapFile, '{"broken.test": {"onion": "nope.onion"}}');
  const bad = await runCli(['reload', '--control', socket]);
  t.equal(bad.code, 1, 'a bad map: exit 1');
  t.equal(bad.stdout, '');
  t.match(bad.stderr, new RegExp(`^xmpp-onion-proxy: map reload failed; the daemon keeps generation 3 \\(${BUNDLED + 2} entries\\): ${mapFile.replace(/[.]/g, '\\.')}: broken\\.test: `));
  await daemon.waitForLog((l) => l.msg === 'map reload failed; keeping the previous map');

  const status = JSON.parse((await runCli(['status', '--json', '--control', socket])).stdout) as SnapshotMessage;
  t.match(status.map, { generation: 3, entries: BUNDLED + 2 }, 'the previous map stays');

  daemon.child.kill('SIGHUP');
  await until(() => daemon.logs().filter((l) => l.msg === 'map reload failed; keeping the previous map').length === 2, 'the SIGHUP reload to fail too');
  writeFileSync(mapFile, '{}');
  daemon.child.kill('SIGHUP');
  await daemon.waitForLog((l) => l.msg === 'map reloaded' && l.entries === BUNDLED);
  const after = JSON.parse((await runCli(['status', '--json', '--control', socket])).stdout) as SnapshotMessage;
  t.match(after.map, { generation: 4, entries: BUNDLED }, 'SIGHUP counts in the same generations');
});

t.test('status, reload and monitor without a daemon: exit 1 with the reason; bad flags: exit 2', async (t) => {
  const { socket } = await setup(t);
  const missing = `${socket}.missing`;
  for (const command of ['status', 'reload', 'monitor']) {
    const run = await runCli([command, '--control', missing]);
    t.equal(run.code, 1, `${command}: exit 1`);
    t.equal(run.stderr, `xmpp-onion-proxy: no control socket at ${missing}: is the daemon running? (give --control PATH if it was started with one)\n`);
  }
  const usage = await runCli(['status', '--bogus']);
  t.equal(usage.code, 2, 'unknown flag: exit 2');
  t.match(usage.stderr, /unknown option '--bogus'/);
});
