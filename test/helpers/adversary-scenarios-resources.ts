/**
 * Resource attacks: a flood of idle connections, slowloris before and after the header, and a
 * whitespace flood. The global connection limit, the header and negotiation time budgets and the
 * pre-TLS byte budget must hold, and a well-behaved client must still be served (or, exactly at
 * the limit, refused with a clear resource-constraint error).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import {
  clientHeaderIn, DOMAIN, FEATURES_OUT, ourError, serverHeaderOut, upstreamOpening,
} from './adversary-arena.js';
import type { Peer } from './adversary-peers.js';
import { expectClosed, sameText, type Scenario } from './adversary-scenario.js';

const FLOOD = 5000;
const LIMIT = 4096;

/** Raises this process's open-file limit when it is too low for the flood (as root, or up to the hard limit). */
export function ensureFileLimit(needed: number): void {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const [soft, hard] = (line?.match(/\d+|unlimited/g) ?? []).map((v) => (v === 'unlimited' ? Infinity : Number(v)));
  if (soft === undefined || soft >= needed) return;
  const target = Math.max(needed, Math.min(hard ?? needed, 65536));
  execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${target}:${Math.max(target, hard ?? target)}`]);
}

interface Idle {
  readonly socket: net.Socket;
  received: string;
  readonly closed: Promise<void>;
}

function idleConnection(port: number, onConnect: () => void): Promise<Idle> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let done: () => void = () => {};
    const idle: Idle = { socket, received: '', closed: new Promise<void>((r) => (done = r)) };
    socket.on('data', (chunk: Buffer) => {
      idle.received += chunk.toString();
    });
    socket.on('close', () => done());
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.removeListener('error', reject);
      socket.on('error', () => {});
      onConnect();
      resolve(idle);
    });
  });
}

const ERROR_TAIL = "</text></stream:error></stream:stream>";
const ID = "id='xop-\\d+' version='1.0'><stream:error>";

export const resourceScenarios: Scenario[] = [
  {
    group: 'resource',
    name: `${FLOOD} connections that send nothing: the limit (${LIMIT}) and the header budget hold`,
    arena: { daemon: { maxConnections: LIMIT, preTlsMemoryBytes: 2 ** 31, headerTimeoutMs: 5000, lingerMs: 500 } },
    async run(t, arena) {
      ensureFileLimit(3 * FLOOD);
      let maxSeen = 0;
      const sample = (): void => {
        maxSeen = Math.max(maxSeen, arena.daemon.proxy.connections);
      };
      const started = Date.now();
      const idle: Idle[] = [];
      // In batches below the listen backlog, each taken in by the daemon before the next: an
      // overflowing accept queue would only measure the kernel's SYN retries.
      for (let i = 0; i < FLOOD; i += 200) {
        idle.push(...await Promise.all(Array.from({ length: Math.min(200, FLOOD - i) }, () => idleConnection(arena.daemon.port, sample))));
        const taken = (): number => arena.daemon.proxy.connections + idle.filter((c) => c.received.length > 0).length;
        while (taken() < idle.length) await new Promise((resolve) => setImmediate(resolve));
        sample();
      }
      arena.skipIds(FLOOD);
      const connectMs = Date.now() - started;
      sample();
      t.ok(connectMs < 5000, `all ${FLOOD} connected before the first header timeout (${connectMs} ms)`);
      t.ok(maxSeen <= LIMIT, `never more than ${LIMIT} sessions (at most ${maxSeen} seen)`);
      // Exactly at the limit, a well-behaved client is refused with a clear resource-constraint error.
      const atLimit = await arena.client();
      atLimit.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await expectClosed(t, atLimit, 'a client at the limit');
      sameText(t, atLimit.text(), ourError('resource-constraint', `the proxy already has ${LIMIT} connections open; try again later`, { id: atLimit.id }),
        'at the limit: resource-constraint, in words');
      await Promise.all(idle.map((i) => i.closed));
      const resource = idle.filter((i) => new RegExp(`^<\\?xml version='1.0'\\?><stream:stream [^>]*${ID}<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text [^>]*>the proxy already has ${LIMIT} connections open; try again later${ERROR_TAIL}$`).test(i.received)).length;
      const timedOut = idle.filter((i) => new RegExp(`^<\\?xml version='1.0'\\?><stream:stream [^>]*${ID}<connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text [^>]*>your client did not send its stream header within 5 seconds${ERROR_TAIL}$`).test(i.received)).length;
      t.equal(timedOut, LIMIT, `${LIMIT} idle connections were cut by the header budget, each with its error`);
      t.equal(resource, FLOOD - LIMIT, `${FLOOD - LIMIT} were refused at the door with resource-constraint`);
      t.equal(arena.socks.requests.length, 0, 'Tor was never asked');
      await arena.serveHonest(t, 'after the flood, a client');
    },
  },
  {
    group: 'resource',
    name: 'slowloris: the header one byte at a time, never finished in time',
    arena: { daemon: { headerTimeoutMs: 700 } },
    async run(t, arena) {
      const c = await arena.client();
      const header = Buffer.from(clientHeaderIn(DOMAIN, arena.secrets.jid));
      const started = Date.now();
      await drip(c, header, 20);
      const elapsed = Date.now() - started;
      sameText(t, c.text(), ourError('connection-timeout', 'your client did not send its stream header within 1 second', { id: c.id }), 'client: the header budget, in words');
      t.ok(elapsed >= 650 && elapsed < 3000, `cut at the budget (${elapsed} ms), not extended by the drip`);
      t.equal(arena.socks.requests.length, 0, 'Tor was never asked');
    },
  },
  {
    group: 'resource',
    name: 'slowloris after the header: whitespace keep-alives, one byte at a time',
    arena: { daemon: { negotiationTimeoutMs: 700 } },
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await c.waitFor(FEATURES_OUT);
      const started = Date.now();
      await drip(c, Buffer.alloc(10_000, ' '), 20);
      const elapsed = Date.now() - started;
      sameText(t, c.text(), serverHeaderOut(DOMAIN) + FEATURES_OUT + ourError('connection-timeout', 'encryption was not set up within 1 second; closing the connection'),
        'client: the negotiation budget, in words');
      t.ok(elapsed < 3000, `cut within the budget (${elapsed} ms after the features)`);
      const server = arena.upstream.peers[0]!;
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), upstreamOpening(DOMAIN), 'server: our opening; no whitespace forwarded');
    },
  },
  {
    group: 'resource',
    name: 'a whitespace flood inside an open <starttls> (1 KiB runs between empty elements, under the run and element bounds): the pre-TLS byte budget holds',
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await c.waitFor(FEATURES_OUT);
      c.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>");
      for (let i = 0; i < 80 && !c.socket.destroyed; i++) c.write(Buffer.alloc(1024, '\n') + '<required/>');
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), serverHeaderOut(DOMAIN) + FEATURES_OUT + ourError('policy-violation',
        'your client sent too much: more than 65536 bytes before encryption was set up; nothing was sent to the server'), 'client: the byte budget, in words');
      const server = arena.upstream.peers[0]!;
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), upstreamOpening(DOMAIN), 'server: our opening only');
    },
  },
  {
    group: 'resource',
    name: 'a whitespace flood after the header: cut past 4096 characters in a row, the parser never holds more',
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await c.waitFor(FEATURES_OUT);
      for (let i = 0; i < 80 && !c.socket.destroyed; i++) c.write(Buffer.alloc(1024, '\n'));
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), serverHeaderOut(DOMAIN) + FEATURES_OUT + ourError('policy-violation',
        'your client sent too much: more than 4096 characters without a tag ending before encryption was set up; nothing was sent to the server'), 'client: the run bound, in words');
      const server = arena.upstream.peers[0]!;
      await expectClosed(t, server, 'server');
      sameText(t, server.text(), upstreamOpening(DOMAIN), 'server: our opening only');
    },
  },
  {
    group: 'resource',
    name: '300 slowloris clients at once: a well-behaved client is served meanwhile, every loris is cut',
    arena: { daemon: { headerTimeoutMs: 2500, maxConnections: 400 } },
    async run(t, arena) {
      const lorises: Array<Peer & { id: string }> = [];
      for (let i = 0; i < 300; i++) lorises.push(await arena.client());
      const drips = lorises.map((c) => drip(c, Buffer.from(clientHeaderIn(DOMAIN, arena.secrets.jid)), 50));
      t.ok(arena.daemon.proxy.connections >= 300, `${arena.daemon.proxy.connections} sessions open`);
      await arena.serveHonest(t, 'while 300 lorises drip, a client');
      await Promise.all(drips);
      const cut = lorises.filter((c) => c.text() === ourError('connection-timeout', 'your client did not send its stream header within 3 seconds', { id: c.id })).length;
      t.equal(cut, 300, 'every loris got the header-timeout error');
      t.equal(arena.socks.requests.length, 1, 'Tor was asked once: for the well-behaved client');
    },
  },
];

/** Writes `data` one byte every `ms` until it is all written or the daemon closed the connection. */
async function drip(c: Peer, data: Buffer, ms: number): Promise<void> {
  let i = 0;
  const timer = setInterval(() => {
    if (i < data.length) c.write(data.subarray(i, ++i));
  }, ms);
  try {
    await c.waitForClose(30_000);
  } finally {
    clearInterval(timer);
  }
}
