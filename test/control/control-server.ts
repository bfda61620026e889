import { lstatSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { createLogger } from '../../src/cli/logger.js';
import { ControlClient } from '../../src/control/control-client.js';
import { ControlServer, type ControlLimits } from '../../src/control/control-server.js';
import type { ReloadOutcome, ServerMessage, SnapshotMessage } from '../../src/control/protocol.js';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.js';
import { startSocks5Fixture } from '../helpers/socks5-server.js';
import { clientHeader, connect, readToClose } from '../helpers/xmpp-wire.js';
import { controlDir, until } from './fixture.js';

interface Harness {
  readonly daemon: TestDaemon;
  readonly control: ControlServer;
  readonly socket: string;
  readonly log: () => string;
  reloads: number;
}

/** The proxy in this process (Tor that refuses every CONNECT) with a control server on a temp socket. */
async function harness(t: Test, limits: Partial<ControlLimits> = {}): Promise<Harness> {
  const socks = await startSocks5Fixture({ resolve: () => undefined });
  t.teardown(() => socks.close());
  const daemon = await startTestDaemon(t, socks.port, [{ domain: 'example.test', host: 'xmpp.example.test' }]);
  const { socket } = controlDir(t);
  let raw = '';
  const log = await createLogger('trace', { pretty: false, destination: new Writable({ write: (chunk: Buffer, _e, done) => ((raw += chunk.toString()), done()) }) });
  const h: Harness = { daemon, control: undefined as unknown as ControlServer, socket, log: () => raw, reloads: 0 };
  const reload = (): ReloadOutcome => {
    h.reloads++;
    daemon.proxy.setMap(daemon.proxy.map);
    return { ok: true, generation: daemon.proxy.mapGeneration, entries: daemon.proxy.map.size, layers: ['bundled'] };
  };
  const control = await ControlServer.listen({
    path: socket, source: daemon.proxy, tor: { kind: 'tcp', host: '127.0.0.1', port: socks.port }, version: '9.9.9', reload, log, limits,
  });
  t.teardown(() => control.close());
  return Object.assign(h, { control });
}

function rawWs(t: Test, socket: string): Promise<WebSocket> {
  const ws = new WebSocket('ws://localhost/', { createConnection: () => net.connect({ path: socket }), perMessageDeflate: false });
  t.teardown(() => ws.terminate());
  ws.on('error', () => {});
  return new Promise((resolve, reject) => ws.once('open', () => resolve(ws)).once('error', reject));
}

function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
}

function nextMessage(ws: WebSocket): Promise<ServerMessage> {
  return new Promise((resolve) => ws.once('message', (data: Buffer) => resolve(JSON.parse(data.toString()) as ServerMessage)));
}

/** A connection to example.test that Tor (the fixture) cannot reach: accepted, routed (with domain), refused, closed. */
async function unreachable(daemon: TestDaemon): Promise<void> {
  const socket = await connect(daemon.port);
  const closed = readToClose(socket);
  socket.write(clientHeader('example.test', " from='alice@example.test'"));
  await closed;
}

t.test('at most 8 clients: the ninth is told why, with close code 1013', async (t) => {
  const h = await harness(t);
  const clients = await Promise.all(Array.from({ length: 8 }, () => ControlClient.connect(h.socket)));
  t.teardown(() => clients.forEach((c) => c.close()));
  await until(() => h.control.clients === 8, 'eight clients');
  const ninth = await rawWs(t, h.socket);
  t.same(await closeOf(ninth), { code: 1013, reason: 'at most 8 control clients at once; close one and try again' });
  const viaClient = await ControlClient.connect(h.socket);
  viaClient.send({ type: 'snapshot', domains: false });
  await t.rejects(viaClient.next('snapshot'), { message: 'the daemon closed the control connection: at most 8 control clients at once; close one and try again' }, 'the command-line client shows the reason');
  clients[0]!.close();
  await until(() => h.control.clients === 7, 'one gone');
  const again = await ControlClient.connect(h.socket);
  t.teardown(() => again.close());
  again.send({ type: 'snapshot', domains: false });
  t.equal((await again.next('snapshot')).control.clients.length, 8, 'room again once one has left');
});

t.test('limits on what a client sends: frame size, binary frames, request rate', async (t) => {
  const h = await harness(t);
  const big = await rawWs(t, h.socket);
  big.send(JSON.stringify({ type: 'snapshot', version: 1, pad: 'x'.repeat(5000) }));
  t.equal((await closeOf(big)).code, 1009, 'more than 4 KiB in a frame: 1009');

  const binary = await rawWs(t, h.socket);
  binary.send(Buffer.from('{"type":"snapshot","version":1}'));
  t.same(await closeOf(binary), { code: 1003, reason: 'text frames only (JSON)' });

  const eager = await rawWs(t, h.socket);
  const closed = closeOf(eager);
  for (let i = 0; i < 21; i++) eager.send(JSON.stringify({ type: 'unsubscribe', version: 1 }));
  t.same(await closed, { code: 1008, reason: 'more than 20 requests a second' });
});

t.test('bad requests are answered with an error and the connection stays', async (t) => {
  const h = await harness(t);
  const ws = await rawWs(t, h.socket);
  const ask = async (text: string): Promise<ServerMessage> => {
    const answer = nextMessage(ws);
    ws.send(text);
    return answer;
  };
  t.same(await ask('not json'), { type: 'error', version: 1, code: 'bad-request', message: 'not JSON', supportedVersions: [1] });
  t.match(await ask('[1]'), { type: 'error', code: 'bad-request', message: 'expected a JSON object' });
  t.match(await ask('{"type":"snapshot"}'), { type: 'error', code: 'unsupported-version', message: '"version" must be 1' });
  t.match(await ask('{"type":"snapshot","version":2}'), { code: 'unsupported-version' });
  t.match(await ask('{"type":"shutdown","version":1}'), { code: 'unknown-type', message: 'expected "type": snapshot, subscribe, unsubscribe or reload' });
  t.match(await ask('{"type":"subscribe","version":1,"domains":"yes"}'), { code: 'bad-request', message: '"domains" must be true or false' });
  t.match(await ask('{"type":"snapshot","version":1}'), { type: 'snapshot', version: 1, daemon: { version: '9.9.9' } }, 'and then a good one is answered');
});

t.test('events: in order, the domain only to a subscriber that asked, nothing of the traffic', async (t) => {
  const h = await harness(t);
  const plain = await ControlClient.connect(h.socket);
  const named = await ControlClient.connect(h.socket);
  t.teardown(() => (plain.close(), named.close()));
  const got: Record<'plain' | 'named', ServerMessage[]> = { plain: [], named: [] };
  plain.on('message', (m) => got.plain.push(m));
  named.on('message', (m) => got.named.push(m));
  plain.send({ type: 'subscribe', domains: false });
  named.send({ type: 'subscribe', domains: true });
  await Promise.all([plain.next('snapshot'), named.next('snapshot')]);
  t.equal(got.plain[0]?.type, 'snapshot', 'the snapshot comes before any event');

  await unreachable(h.daemon);
  await until(() => got.plain.some((m) => m.type === 'event' && m.event === 'closed') && got.named.some((m) => m.type === 'event' && m.event === 'closed'), 'closed events');
  const story = (messages: ServerMessage[]): string[] => messages.flatMap((m) => (m.type === 'event' ? [m.event] : []));
  t.same(story(got.plain), ['accepted', 'routed', 'refused', 'closed']);
  t.same(story(got.named), ['accepted', 'routed', 'refused', 'closed']);
  const routed = (messages: ServerMessage[]): ServerMessage | undefined => messages.find((m) => m.type === 'event' && m.event === 'routed');
  t.same(Object.keys(routed(got.plain)!).sort(), ['at', 'event', 'id', 'mode', 'route', 'type', 'version'], 'without domains: exactly these fields');
  t.match(routed(got.named), { route: 'clearnet', mode: 'starttls', domain: 'example.test' }, 'with domains: the domain');
  t.notMatch(JSON.stringify(got), /alice/, 'never the JID');
  t.notMatch(JSON.stringify(got), /xmpp\.example\.test/, 'never the host Tor was asked for');

  named.send({ type: 'snapshot', domains: false });
  t.same((await named.next('snapshot')).you, { client: 2, subscribed: true, domains: true, dropped: 0 }, 'a one-off snapshot does not change the subscription');
  got.named.length = 0;
  await unreachable(h.daemon);
  await until(() => got.named.some((m) => m.type === 'event' && m.event === 'closed'), 'closed again');
  t.match(routed(got.named), { domain: 'example.test' }, 'events still carry the domain');
});

t.test('an unsubscribe sent right after a subscribe leaves the client unsubscribed', async (t) => {
  const h = await harness(t);
  const client = await ControlClient.connect(h.socket);
  t.teardown(() => client.close());
  const events: ServerMessage[] = [];
  client.on('message', (m) => m.type === 'event' && events.push(m));
  client.send({ type: 'subscribe', domains: false });
  client.send({ type: 'unsubscribe' });
  t.same((await client.next('snapshot')).you, { client: 1, subscribed: false, domains: false, dropped: 0 }, 'the later request wins');
  await unreachable(h.daemon);
  client.send({ type: 'snapshot', domains: false });
  t.match((await client.next('snapshot')).you, { subscribed: false });
  t.same(events, [], 'no event reached it');
});

t.test('reload goes to the daemon\'s reload and the answer comes back', async (t) => {
  const h = await harness(t);
  const client = await ControlClient.connect(h.socket);
  t.teardown(() => client.close());
  client.send({ type: 'reload' });
  t.match(await client.next('reload'), { type: 'reload', version: 1, ok: true, generation: 2, layers: ['bundled'] });
  t.equal(h.reloads, 1);
  t.match(h.log(), /"msg":"map reload asked on the control socket"/);
});

t.test('plain HTTP gets 426; close() says goodbye (1001) even to a client that reads nothing, and removes the socket', async (t) => {
  const h = await harness(t);
  const status = await new Promise<number>((resolve, reject) => {
    http.get({ socketPath: h.socket, path: '/' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).once('error', reject);
  });
  t.equal(status, 426);

  const polite = await rawWs(t, h.socket);
  const stuck = await rawWs(t, h.socket);
  stuck.send(JSON.stringify({ type: 'subscribe', version: 1 }));
  await until(() => h.control.clients === 2, 'two clients');
  stuck.pause();
  const goodbye = closeOf(polite);
  const started = Date.now();
  await h.control.close();
  t.ok(Date.now() - started < 5000, `close() did not wait for the stuck client (${Date.now() - started} ms)`);
  t.same(await goodbye, { code: 1001, reason: 'daemon stopping' });
  t.notOk(lstatSync(h.socket, { throwIfNoEntry: false }), 'socket removed');
});

t.test('snapshot lists connections with their state; the list is capped', async (t) => {
  const h = await harness(t, { listedConnections: 2 });
  const open = await Promise.all([0, 1, 2].map(() => connect(h.daemon.port)));
  t.teardown(() => open.forEach((s) => s.destroy()));
  const client = await ControlClient.connect(h.socket);
  t.teardown(() => client.close());
  let snapshot: SnapshotMessage | undefined;
  await until(async () => {
    client.send({ type: 'snapshot', domains: false });
    snapshot = await client.next('snapshot');
    return snapshot.counters.open === 3;
  }, 'three open connections', 10_000, 100);
  t.equal(snapshot!.connections.length, 2, 'two listed');
  t.equal(snapshot!.connectionsOmitted, 1, 'one counted as omitted');
  t.match(snapshot!.connections[0], { door: 'connect-server', state: 'negotiating' });
  t.notOk('route' in snapshot!.connections[0]!, 'no route before the header');
});
