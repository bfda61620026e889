/**
 * The workloads, each on every path it is given. A path is how the client reaches the bench
 * XMPP server: `direct` (the client does SOCKS to the hop itself), or through a relay.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { openConnection, type ClientContext, type Connection, type Target } from './client.js';
import { cpuSeconds, fdCount, fdLimit, type FdLimit } from './proc.js';
import { exited, stopChild } from './processes.js';
import { CLI, daemonEnv, ONE_FILE_CLI, type Hop, type Relay } from './relays.js';
import { median, rotate, summarize, type Summary } from './stats.js';
import { RECORDS_CHUNK, type BenchServer } from './xmpp-server.js';
import { clientHeader, RECORD_SIZE, RECORDS_DOMAIN, sendBulk, type Mode } from './wire.js';
import { DEFAULT_XML_LIMITS } from '../../src/policy/xml-events.js';
import { negotiationWorstBytes } from '../../src/proxy/negotiation-memory.js';

export type PathName = 'direct' | Relay['name'];

export interface BenchPath {
  readonly name: PathName;
  readonly target: Target;
  readonly relay?: Relay;
}

export interface Rig {
  readonly context: ClientContext;
  readonly server: BenchServer;
  readonly hop: Hop;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/* ---------------------------------------------------------------- bulk */

export interface BulkSample {
  readonly path: PathName;
  readonly mode: Mode;
  /** Payload bytes relayed, both directions together. */
  readonly bytes: number;
  readonly seconds: number;
  readonly relayCpuSeconds: number | undefined;
  /** The same from utime and stime (10 ms resolution): where the relay's time went. */
  readonly relayUserSeconds: number | undefined;
  readonly relaySystemSeconds: number | undefined;
  /** The relay's read and write system calls over the transfer: bytes per read explain most CPU differences. */
  readonly relayReads: number | undefined;
  readonly relayWrites: number | undefined;
  readonly hopCpuSeconds: number;
}

const TLS_BULK_CHUNK = Buffer.alloc(64 * 1024, 0x61);

/** One connection sending `perDirection` bytes each way at once; the relay's CPU over the transfer. */
export async function bulkOnce(rig: Rig, path: BenchPath, mode: Mode, perDirection: number): Promise<BulkSample> {
  const total = mode === 'records' ? Math.max(1, Math.round(perDirection / RECORD_SIZE)) * RECORD_SIZE : perDirection;
  const chunk = mode === 'records' ? RECORDS_CHUNK : TLS_BULK_CHUNK;
  const connection = await openConnection(path.target, mode, rig.context, `BULK ${total}`);
  const relayBefore = path.relay?.cpu();
  const splitBefore = path.relay?.userSystem();
  const ioBefore = path.relay?.io();
  const hopBefore = rig.hop.cpu();
  const started = performance.now();
  try {
    await Promise.all([sendBulk(connection.stream, total, chunk), connection.reader.count(total)]);
  } finally {
    connection.close();
  }
  const seconds = (performance.now() - started) / 1000;
  await rig.server.drainedTo(0, 5000);
  await path.relay?.settle();
  const splitAfter = path.relay?.userSystem();
  const ioAfter = path.relay?.io();
  return {
    path: path.name,
    mode,
    bytes: 2 * total,
    seconds,
    relayCpuSeconds: path.relay && relayBefore !== undefined ? path.relay.cpu() - relayBefore : undefined,
    relayUserSeconds: splitBefore && splitAfter ? splitAfter.user - splitBefore.user : undefined,
    relaySystemSeconds: splitBefore && splitAfter ? splitAfter.system - splitBefore.system : undefined,
    relayReads: ioBefore && ioAfter ? ioAfter.syscr - ioBefore.syscr : undefined,
    relayWrites: ioBefore && ioAfter ? ioAfter.syscw - ioBefore.syscw : undefined,
    hopCpuSeconds: rig.hop.cpu() - hopBefore,
  };
}

/* ---------------------------------------------------------------- handshakes */

export interface HandshakeResult {
  /** Per path: every sample (ms), in repetition order. */
  readonly samples: Record<string, number[][]>;
  /** Per path: the relay's CPU per connection, µs, per repetition. */
  readonly relayCpuMicros: Record<string, number[]>;
}

/**
 * Sequential handshakes, connect → TLS established, interleaved one by one across paths (the
 * order rotates), `perRep` per path in each of `reps` repetitions, after a short warm-up.
 */
export async function handshakes(rig: Rig, paths: readonly BenchPath[], perRep: number, reps: number, warmup = 10): Promise<HandshakeResult> {
  const samples: Record<string, number[][]> = {};
  const relayCpuMicros: Record<string, number[]> = {};
  for (const path of paths) {
    samples[path.name] = [];
    relayCpuMicros[path.name] = [];
    for (let i = 0; i < warmup; i++) (await openConnection(path.target, 'tls', rig.context)).close();
  }
  await rig.server.drainedTo(0, 5000);
  for (let rep = 0; rep < reps; rep++) {
    const before = new Map(paths.map((p) => [p.name, p.relay?.cpu()]));
    const round = new Map<string, number[]>(paths.map((p) => [p.name, []]));
    for (let i = 0; i < perRep; i++) {
      for (const path of rotate(paths, i + rep)) {
        const connection = await openConnection(path.target, 'tls', rig.context);
        round.get(path.name)!.push(connection.setupMs);
        connection.close();
      }
    }
    await rig.server.drainedTo(0, 5000);
    for (const path of paths) {
      samples[path.name]!.push(round.get(path.name)!);
      const start = before.get(path.name);
      if (path.relay && start !== undefined) {
        await path.relay.settle();
        relayCpuMicros[path.name]!.push(((path.relay.cpu() - start) / perRep) * 1e6);
      }
    }
  }
  return { samples, relayCpuMicros };
}

/* ---------------------------------------------------------------- echo */

export interface EchoResult {
  /** Per path: round-trip times (µs), one array per repetition. */
  readonly samples: Record<string, number[][]>;
}

/** Small-message round trips inside TLS over one connection per path, interleaved message by message. */
export async function echo(rig: Rig, paths: readonly BenchPath[], perRep: number, reps: number, size = 160): Promise<EchoResult> {
  const message = Buffer.alloc(size, 0x6d);
  const connections = new Map<string, Connection>();
  const samples: Record<string, number[][]> = {};
  try {
    for (const path of paths) {
      connections.set(path.name, await openConnection(path.target, 'tls', rig.context, 'ECHO'));
      samples[path.name] = [];
    }
    const once = async (connection: Connection): Promise<number> => {
      const started = performance.now();
      connection.stream.write(message);
      await connection.reader.takeBytes(size);
      return (performance.now() - started) * 1000;
    };
    for (const connection of connections.values()) for (let i = 0; i < 50; i++) await once(connection);
    for (let rep = 0; rep < reps; rep++) {
      const round = new Map<string, number[]>(paths.map((p) => [p.name, []]));
      for (let i = 0; i < perRep; i++) {
        for (const path of rotate(paths, i + rep)) round.get(path.name)!.push(await once(connections.get(path.name)!));
      }
      for (const path of paths) samples[path.name]!.push(round.get(path.name)!);
    }
  } finally {
    for (const connection of connections.values()) connection.close();
    await rig.server.drainedTo(0, 5000);
  }
  return { samples };
}

/* ---------------------------------------------------------------- idle connections */

async function openMany(
  count: number,
  concurrency: number,
  open: () => Promise<Connection>,
  into: Connection[],
): Promise<Error | undefined> {
  let started = 0;
  let failure: Error | undefined;
  const worker = async (): Promise<void> => {
    while (started < count && failure === undefined) {
      started++;
      try {
        into.push(await open());
      } catch (error) {
        failure ??= error as Error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return failure;
}

async function memorySample(relay: Relay): Promise<number> {
  const readings: number[] = [];
  for (let i = 0; i < 3; i++) {
    if (i > 0) await sleep(100);
    readings.push(relay.memoryKiB());
  }
  return median(readings);
}

export interface IdlePoint {
  readonly connections: number;
  readonly memoryKiB: number;
  /** (memory now − memory before the first connection) / connections. */
  readonly perConnectionKiB: number;
  readonly fds: number | undefined;
}

export interface IdleResult {
  readonly relay: PathName;
  readonly baselineKiB: number;
  readonly points: IdlePoint[];
  /** After every connection closed: memory kept, per connection that was open. */
  readonly retainedPerConnectionKiB: number | undefined;
  /** The relay's RLIMIT_NOFILE (Node raises its soft limit to the hard one by itself). */
  readonly fdLimit: FdLimit | undefined;
  readonly error?: string;
}

/**
 * A fresh relay process, warmed up with a few connections, then `counts` (ascending) idle
 * relayed connections in records mode held open; memory read after `settleMs`.
 */
export async function idle(rig: Rig, relay: Relay, counts: readonly number[], settleMs: number, concurrency = 32): Promise<IdleResult> {
  const target: Target = { speaks: relay.speaks, port: relay.port };
  const open = (): Promise<Connection> => openConnection(target, 'records', rig.context, 'IDLE');
  const held: Connection[] = [];
  const warm: Connection[] = [];
  await openMany(20, 4, open, warm);
  for (const connection of warm) connection.close();
  await rig.server.drainedTo(0, 5000);
  await relay.settle();
  await sleep(settleMs);
  const baselineKiB = await memorySample(relay);
  const points: IdlePoint[] = [];
  let error: string | undefined;
  try {
    for (const count of counts) {
      const failure = await openMany(count - held.length, concurrency, open, held);
      if (failure) {
        error = `after ${held.length} connections: ${failure.message}`;
        break;
      }
      await sleep(settleMs);
      const memoryKiB = await memorySample(relay);
      points.push({ connections: count, memoryKiB, perConnectionKiB: (memoryKiB - baselineKiB) / count, fds: fdCount(relay.pid) });
    }
  } finally {
    for (const connection of held) connection.close();
  }
  const heldCount = held.length;
  await rig.server.drainedTo(0, 20_000);
  await relay.settle();
  await sleep(settleMs);
  const after = await memorySample(relay);
  return {
    relay: relay.name,
    baselineKiB,
    points,
    retainedPerConnectionKiB: heldCount > 0 ? (after - baselineKiB) / heldCount : undefined,
    fdLimit: fdLimit(relay.pid),
    ...(error !== undefined ? { error } : {}),
  };
}

/* ---------------------------------------------------------------- the most concurrent connections */

export interface MaxConnectionsResult {
  readonly relay: PathName;
  readonly fdLimit: number;
  /** Idle relayed connections open at once when the first one failed (or the cap was reached). */
  readonly reached: number;
  readonly capped: boolean;
  readonly firstError?: string;
}

/** Opens idle relayed connections in batches until one fails or `cap` is reached (bounded). */
export async function maxConnections(rig: Rig, relay: Relay, fdLimit: number, cap: number, batch = 64): Promise<MaxConnectionsResult> {
  const target: Target = { speaks: relay.speaks, port: relay.port };
  const open = (): Promise<Connection> => openConnection(target, 'records', { ...rig.context, timeoutMs: 5000 }, 'IDLE');
  const held: Connection[] = [];
  let firstError: string | undefined;
  try {
    while (held.length < cap && firstError === undefined) {
      const failure = await openMany(Math.min(batch, cap - held.length), 16, open, held);
      if (failure) firstError = describeFailure(failure.message);
    }
  } finally {
    for (const connection of held) connection.close();
  }
  const reached = held.length;
  await rig.server.drainedTo(0, 20_000);
  return { relay: relay.name, fdLimit, reached, capped: firstError === undefined, ...(firstError !== undefined ? { firstError } : {}) };
}

/** A stream error's condition and text when the failure carries one, else the message itself (shortened). */
export function describeFailure(message: string): string {
  const condition = /<stream:error><([a-z-]+)/.exec(message)?.[1];
  const text = /<text[^>]*>([^<]*)/.exec(message)?.[1];
  return condition ? `stream error ${condition}${text ? `: "${text}"` : ''}` : message.slice(0, 300);
}

export interface LimitRefusal {
  readonly limit: number;
  readonly opened: number;
  /** The connection past the limit got a stream error naming resource-constraint. */
  readonly clear: boolean;
  readonly answer: string;
}

/** The daemon at `--max-connections limit`: `limit` idle connections, then one more, which must be refused in words. */
export async function refusalAtLimit(rig: Rig, relay: Relay, limit: number): Promise<LimitRefusal> {
  const target: Target = { speaks: relay.speaks, port: relay.port };
  const open = (): Promise<Connection> => openConnection(target, 'records', rig.context, 'IDLE');
  const held: Connection[] = [];
  let answer: string;
  try {
    await openMany(limit, 16, open, held);
    try {
      (await open()).close();
      answer = 'accepted (no refusal)';
    } catch (error) {
      answer = describeFailure((error as Error).message);
    }
  } finally {
    for (const connection of held) connection.close();
  }
  await rig.server.drainedTo(0, 10_000);
  return { limit, opened: held.length, clear: answer.includes('resource-constraint'), answer };
}

/* ---------------------------------------------------------------- start-up */

export interface StartupResult {
  /** spawn → the daemon's "listening on" line, ms. */
  readonly daemon: number[];
  /** spawn → the same line from a bare Node ESM script that only listens: Node's own floor. */
  readonly nodeFloor: number[];
  /** CPU time (all threads) each had used when the line came, ms: less sensitive to a busy machine than wall time. */
  readonly daemonCpu: number[];
  readonly nodeFloorCpu: number[];
  /** The same for the one-file build (dist/cli/xmpp-onion-proxy.mjs), when it is built. */
  readonly oneFile: number[];
  readonly oneFileCpu: number[];
}

const NODE_FLOOR_SCRIPT = "import net from 'node:net'; const s = net.createServer(); s.listen(0, '127.0.0.1', () => process.stdout.write('listening on ' + s.address().port + '\\n'));";

async function timeToListening(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ ms: number; cpuMs: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'], env });
  try {
    return await new Promise<{ ms: number; cpuMs: number }>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error('no "listening on" line within 10 s')), 10_000);
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        if (out.includes('listening on')) {
          const ms = performance.now() - started;
          clearTimeout(timer);
          resolve({ ms, cpuMs: (cpuSeconds(child.pid!) ?? Number.NaN) * 1000 });
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`exited with ${code} before listening: ${out}`));
      });
    });
  } finally {
    await stopChild(child);
    await exited(child);
  }
}

/** Start-up to listening of the built daemon (`--listen 127.0.0.1:0`), interleaved with Node's floor. */
export async function startup(hopPort: number, runs: number): Promise<StartupResult> {
  const result: StartupResult = { daemon: [], nodeFloor: [], daemonCpu: [], nodeFloorCpu: [], oneFile: [], oneFileCpu: [] };
  const daemonArgs = [CLI, '--listen', '127.0.0.1:0', '--tor', `127.0.0.1:${hopPort}`];
  const oneFileArgs = [ONE_FILE_CLI, ...daemonArgs.slice(1)];
  const floorArgs = ['--input-type=module', '-e', NODE_FLOOR_SCRIPT];
  const kinds = existsSync(ONE_FILE_CLI) ? (['daemon', 'one-file', 'floor'] as const) : (['daemon', 'floor'] as const);
  // One untimed run each, so the files are in the page cache like on a used machine.
  await timeToListening(daemonArgs, daemonEnv());
  if (existsSync(ONE_FILE_CLI)) await timeToListening(oneFileArgs, daemonEnv());
  await timeToListening(floorArgs, process.env);
  for (let i = 0; i < runs; i++) {
    for (const which of rotate(kinds, i)) {
      if (which === 'daemon' || which === 'one-file') {
        const { ms, cpuMs } = await timeToListening(which === 'daemon' ? daemonArgs : oneFileArgs, daemonEnv());
        (which === 'daemon' ? result.daemon : result.oneFile).push(ms);
        (which === 'daemon' ? result.daemonCpu : result.oneFileCpu).push(cpuMs);
      } else {
        const { ms, cpuMs } = await timeToListening(floorArgs, process.env);
        result.nodeFloor.push(ms);
        result.nodeFloorCpu.push(cpuMs);
      }
    }
  }
  return result;
}

export function summarizeRounds(rounds: readonly number[][]): { all: Summary; perRep: number[] } {
  return { all: summarize(rounds.flat()), perRep: rounds.map((r) => median(r)) };
}

/* ---------------------------------------------------------------- memory before TLS, at the bound */

export interface PreTlsResult {
  readonly connections: number;
  /** (memory with them held − memory before) / connections. */
  readonly perConnectionKiB: number;
  /** What the README states one negotiating connection holds at worst. */
  readonly boundKiB: number;
}

/** The client side at every pre-TLS bound: an open `<starttls>` holding 127 children with long names, just under 64 KiB. */
const AT_THE_BOUND = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>" + Array.from({ length: 127 }, (_, i) => `<n${i}${'é'.repeat(245)}/>`).join('');

/**
 * `count` connections to a fresh daemon, each past its features and then at the pre-TLS bounds
 * (and so negotiating for as long as the daemon lets it), held while memory is read.
 */
export async function preTlsAtBound(relay: Relay, count: number, settleMs: number): Promise<PreTlsResult> {
  await relay.settle();
  await sleep(settleMs);
  const before = await memorySample(relay);
  const sockets: net.Socket[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const socket = net.connect({ host: '127.0.0.1', port: relay.port });
      socket.on('error', () => {});
      sockets.push(socket);
      let received = '';
      await new Promise<void>((resolve, reject) => {
        socket.on('data', (chunk: Buffer) => {
          received += chunk.toString();
          if (received.includes('</stream:features>')) resolve();
          if (received.includes('</stream:stream>')) reject(new Error(`refused: ${received.slice(-200)}`));
        });
        socket.once('connect', () => socket.write(clientHeader(RECORDS_DOMAIN)));
      });
      socket.write(AT_THE_BOUND);
    }
    await sleep(settleMs);
    const held = await memorySample(relay);
    return { connections: count, perConnectionKiB: (held - before) / count, boundKiB: negotiationWorstBytes(DEFAULT_XML_LIMITS) / 1024 };
  } finally {
    for (const socket of sockets) socket.destroy();
  }
}

/* ---------------------------------------------------------------- round trips over a modelled circuit */

/** A failed connection in a line: the stream error's text when there is one (a diagnostic, not a parser). */
function whyFailed(error: Error): string {
  const text = /<text[^>]*>([^<]{1,400})<\/text>/.exec(error.message)?.[1];
  return text ?? error.message.slice(0, 300);
}

export interface RoundTripResult {
  /** The circuit's one-way delay, ms. */
  readonly delayMs: number;
  /** Per path: connect → TLS established, ms, one sample per connection. */
  readonly samples: Partial<Record<PathName, number[]>>;
  /** Connections that failed, with why (the run goes on without them). */
  readonly failures: string[];
}

/**
 * `count` connections per path (interleaved) over a circuit of `delayMs` one way (the hop models
 * Tor's BEGIN round trip and optimistic data): the time from connect to TLS established, which
 * the report turns into round trips (time ÷ 2 × delay).
 */
export async function roundTrips(rig: Rig, paths: readonly BenchPath[], count: number, delayMs: number): Promise<RoundTripResult> {
  const samples: Partial<Record<PathName, number[]>> = {};
  const failures: string[] = [];
  for (const path of paths) samples[path.name] = [];
  for (let i = 0; i < count; i++) {
    for (const path of rotate(paths, i)) {
      try {
        const connection = await openConnection(path.target, 'tls', { ...rig.context, timeoutMs: 60 * delayMs + 10_000 });
        samples[path.name]!.push(connection.setupMs);
        connection.close();
      } catch (error) {
        failures.push(`${path.name}: ${whyFailed(error as Error)}`);
      }
    }
  }
  await rig.server.drainedTo(0, 10_000);
  return { delayMs, samples, failures };
}
