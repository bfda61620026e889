import type net from 'node:net';
import type { RelayWalkers, TlsRecordWalker } from '../policy/tls-records.js';

export interface RelayCounters {
  fromClient: number;
  fromServer: number;
}

/** `hello`: the first record held something other than that side's hello. */
export type FramingFailure = (from: 'client' | 'server', problem: string, hello: boolean) => void;

/** One direction's state, kept on its source socket so the handlers below are shared, not per connection. */
interface Pump {
  readonly target: net.Socket;
  /** Absent for a pass-through connection, whose bytes are not checked. */
  readonly walker: TlsRecordWalker | undefined;
  readonly counters: RelayCounters;
  readonly from: 'client' | 'server';
  readonly fail: FramingFailure;
}

const kPump = Symbol('xop.pump');
const kDrainSource = Symbol('xop.drainSource');
type Source = net.Socket & { [kPump]?: Pump };
type Target = net.Socket & { [kDrainSource]?: net.Socket };

/**
 * Both directions piped with backpressure, each chunk's record headers checked by a
 * TlsRecordWalker before it is written (the chunk itself is passed untouched); without walkers,
 * nothing is checked. A FIN is passed on as a FIN (half-close); the sockets close themselves
 * once both ends are done.
 */
export function startRelay(
  client: net.Socket,
  server: net.Socket,
  walkers: RelayWalkers | undefined,
  counters: RelayCounters,
  onFramingFailure: FramingFailure,
): void {
  pump(client, server, { target: server, walker: walkers?.client, counters, from: 'client', fail: onFramingFailure });
  pump(server, client, { target: client, walker: walkers?.server, counters, from: 'server', fail: onFramingFailure });
}

function pump(source: Source, target: Target, state: Pump): void {
  source[kPump] = state;
  target[kDrainSource] = source;
  source.on('data', onData);
  source.on('end', onEnd);
  target.on('drain', onDrain);
}

function onData(this: Source, received: Buffer): void {
  const state = this[kPump]!;
  const walker = state.walker;
  const problem = walker?.check(received);
  if (problem !== undefined) {
    state.fail(state.from, problem, walker!.failedOnHello);
    return;
  }
  // Whitespace before the first TLS byte (after STARTTLS only) is XML's, not TLS's: never passed on.
  const chunk = walker && walker.leading > 0 ? received.subarray(walker.leading) : received;
  if (chunk.length === 0) return;
  if (state.from === 'client') state.counters.fromClient += chunk.length;
  else state.counters.fromServer += chunk.length;
  if (!state.target.write(chunk)) this.pause();
}

function onEnd(this: Source): void {
  this[kPump]!.target.end();
}

function onDrain(this: Target): void {
  this[kDrainSource]!.resume();
}
