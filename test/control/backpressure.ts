import { readFileSync } from 'node:fs';
import net from 'node:net';
import t from 'tap';
import WebSocket from 'ws';
import { DEFAULT_CONTROL_LIMITS } from '../../src/control/control-server.js';
import type { ServerMessage, SnapshotMessage } from '../../src/control/protocol.js';
import { requireBuild } from '../cli/built-cli.js';
import { starttlsClient } from '../helpers/xmpp-wire.js';
import { inParallel, ONION_DOMAIN, refusedConnection, runCli, setup, until, type Setup } from './fixture.js';

if (!requireBuild(t)) process.exit(1);

const STORM = 500;
const ROUNDS = Number(process.env.XOP_BACKPRESSURE_ROUNDS ?? 3);
/** One message may go out while the buffer is just under the bound: the largest event is far below this. */
const SLACK = 4096;

function rssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(/(\d+)/.exec(line)![1]) * 1024;
}

interface RunningRelay {
  /** Stops writing; resolves with what came back through the daemon, and how fast. */
  stop(): Promise<{ bytes: number; ms: number; mibPerSecond: number }>;
}

/** A TLS relay to the echo server kept busy (as fast as it echoes) until stopped. */
async function busyRelay(s: Setup): Promise<RunningRelay> {
  const { secure } = await starttlsClient(s.daemon.port, ONION_DOMAIN, s.caCert);
  const started = performance.now();
  let received = 0;
  let writing = true;
  secure.on('data', (chunk: Buffer) => (received += chunk.length));
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const pump = (async () => {
    while (writing) {
      if (!secure.write(chunk)) await new Promise((resolve) => secure.once('drain', resolve));
    }
  })();
  return {
    stop: async () => {
      const ms = performance.now() - started;
      const bytes = received;
      writing = false;
      await pump;
      secure.destroy();
      return { bytes, ms, mibPerSecond: bytes / 1048576 / (ms / 1000) };
    },
  };
}

async function snapshot(socket: string): Promise<SnapshotMessage> {
  const run = await runCli(['status', '--json', '--control', socket]);
  return JSON.parse(run.stdout) as SnapshotMessage;
}

/** A subscriber over `ws` that stops reading (its socket paused) once it has its first snapshot. */
async function stuckSubscriber(socket: string): Promise<{ ws: WebSocket; messages: ServerMessage[]; client: number }> {
  const ws = new WebSocket('ws://localhost/', { createConnection: () => net.connect({ path: socket }), perMessageDeflate: false });
  const messages: ServerMessage[] = [];
  ws.on('message', (data: Buffer) => messages.push(JSON.parse(data.toString()) as ServerMessage));
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  ws.send(JSON.stringify({ type: 'subscribe', version: 1, domains: true }));
  await until(() => messages.length > 0, 'the first snapshot');
  ws.pause();
  const first = messages[0] as SnapshotMessage;
  return { ws, messages, client: first.you.client };
}

/** utime + stime of a process, in milliseconds (clock ticks are 100 a second on Linux). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

t.test('a subscriber that never reads: its buffer stays bounded, drops are counted, relays are not slowed, and it catches up', async (t) => {
  const s = await setup(t);
  const pid = s.daemon.child.pid!;
  await (await busyRelay(s)).stop();
  const stuck = await stuckSubscriber(s.socket);
  t.teardown(() => stuck.ws.terminate());
  stuck.ws.send(JSON.stringify({ type: 'unsubscribe', version: 1 }));

  // Rounds without (A) and with (B) the stuck subscriber, alternated so that warm-up and the
  // load of a shared machine fall on both: a storm of refusals (three events each) while a busy
  // relay runs through the daemon.
  const rounds: Record<'A' | 'B', Array<{ mibPerSecond: number; cpuMs: number; rssGrowth: number }>> = { A: [], B: [] };
  for (const kind of Array.from({ length: 2 * ROUNDS }, (_, i) => (i % 2 === 0 ? 'A' : 'B') as 'A' | 'B')) {
    // Writing is not paused: the stuck client can still switch its own subscription.
    stuck.ws.send(JSON.stringify({ type: kind === 'B' ? 'subscribe' : 'unsubscribe', version: 1, ...(kind === 'B' ? { domains: true } : {}) }));
    const rss = rssOf(pid);
    const cpu = cpuMsOf(pid);
    const running = await busyRelay(s);
    await inParallel(STORM, 20, () => refusedConnection(s.daemon.port));
    const relayed = await running.stop();
    rounds[kind].push({ mibPerSecond: relayed.mibPerSecond, cpuMs: cpuMsOf(pid) - cpu, rssGrowth: rssOf(pid) - rss });
  }

  const seen = await snapshot(s.socket);
  const stats = seen.control.clients.find((c) => c.client === stuck.client)!;
  t.ok(stats, 'the stuck subscriber is listed in another client\'s snapshot');
  t.ok(stats.dropped > 0, `events to it were dropped and counted (${stats.dropped})`);
  t.ok(stats.peakBuffered <= DEFAULT_CONTROL_LIMITS.bufferLimit + SLACK, `its unsent bytes never passed the bound: peak ${stats.peakBuffered} ≤ ${DEFAULT_CONTROL_LIMITS.bufferLimit} + ${SLACK}`);
  t.ok(stats.buffered <= DEFAULT_CONTROL_LIMITS.bufferLimit + SLACK, `nor now (${stats.buffered})`);
  t.equal(seen.counters.accepted, 2 * ROUNDS * STORM + 2 * ROUNDS + 1, 'every connection was accepted and counted');
  t.equal(seen.counters.refused['client-restricted-xml'], 2 * ROUNDS * STORM);

  const mib = (n: number): string => (n / 1048576).toFixed(1);
  for (const kind of ['A', 'B'] as const) {
    const r = rounds[kind];
    t.comment(`${kind === 'A' ? 'no subscriber   ' : 'stuck subscriber'}: relay during ${STORM} refusals: ${r.map((x) => x.mibPerSecond.toFixed(1)).join(', ')} MiB/s; ` +
      `daemon CPU ${r.map((x) => x.cpuMs).join(', ')} ms; RSS growth ${r.map((x) => mib(x.rssGrowth)).join(', ')} MiB`);
  }
  const relayA = median(rounds.A.map((r) => r.mibPerSecond));
  const relayB = median(rounds.B.map((r) => r.mibPerSecond));
  const cpuA = median(rounds.A.map((r) => r.cpuMs));
  const cpuB = median(rounds.B.map((r) => r.cpuMs));
  // The relay's rate swings by 2-3x between rounds on a shared 2-core machine whatever the
  // subscriber does (8 rounds each measured: medians 6.9 and 7.7 MiB/s), so its bound is loose;
  // the daemon's own CPU time is steadier. The byte bound above is the exact one.
  t.ok(relayB > relayA / 4, `the relay kept its pace: median ${relayB.toFixed(1)} MiB/s with the stuck subscriber, ${relayA.toFixed(1)} MiB/s without`);
  t.ok(cpuB < cpuA * 1.5 + 100, `the daemon did not work harder: median CPU ${cpuB} ms with, ${cpuA} ms without`);
  t.ok(Math.max(...rounds.B.map((r) => r.rssGrowth)) < 32 * 1024 * 1024, 'the daemon did not grow with the stuck subscriber');

  // It reads again: a fresh snapshot tells it how much it missed, then events flow again.
  const before = stuck.messages.length;
  stuck.ws.resume();
  await until(() => stuck.messages.slice(before).some((m) => m.type === 'snapshot' && m.you.dropped >= stats.dropped), 'the catch-up snapshot');
  const resync = stuck.messages.slice(before).find((m): m is SnapshotMessage => m.type === 'snapshot' && m.you.dropped >= stats.dropped)!;
  t.equal(resync.counters.accepted, 2 * ROUNDS * STORM + 2 * ROUNDS + 1, 'the catch-up snapshot is current');
  const mark = stuck.messages.length;
  await refusedConnection(s.daemon.port);
  await until(() => stuck.messages.slice(mark).some((m) => m.type === 'event' && m.event === 'closed'), 'events after the catch-up');
  t.pass('events flow again');
  const sizes = stuck.messages.filter((m) => m.type === 'event').map((m) => JSON.stringify(m).length);
  const mean = sizes.reduce((a, b) => a + b, 0) / sizes.length;
  t.comment(`stuck subscriber: peak ${stats.peakBuffered} B unsent, ${stats.dropped} messages dropped (an unbounded queue would have held ≈ ${(stats.dropped * mean / 1024).toFixed(0)} KiB more); ` +
    `${sizes.length} events delivered, ${mean.toFixed(0)} B each on average`);
});
