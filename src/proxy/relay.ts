import type net from 'node:net';
import { TlsRecordWalker } from '../policy/tls-records.js';

export interface RelayCounters {
  fromClient: number;
  fromServer: number;
}

export type FramingFailure = (from: 'client' | 'server', problem: string) => void;

/**
 * After `<proceed/>`: both directions piped with backpressure, each chunk's record headers
 * checked by a TlsRecordWalker before it is written (the chunk itself is passed untouched).
 * A FIN is passed on as a FIN (half-close); the sockets close themselves once both ends are done.
 */
export function startRelay(
  client: net.Socket,
  server: net.Socket,
  clientWalker: TlsRecordWalker,
  counters: RelayCounters,
  onFramingFailure: FramingFailure,
): void {
  pump(client, server, clientWalker, (n) => (counters.fromClient += n), (problem) => onFramingFailure('client', problem));
  pump(server, client, new TlsRecordWalker(), (n) => (counters.fromServer += n), (problem) => onFramingFailure('server', problem));
}

function pump(
  source: net.Socket,
  target: net.Socket,
  walker: TlsRecordWalker,
  count: (n: number) => void,
  fail: (problem: string) => void,
): void {
  source.on('data', (chunk: Buffer) => {
    const problem = walker.check(chunk);
    if (problem !== undefined) {
      fail(problem);
      return;
    }
    count(chunk.length);
    if (!target.write(chunk)) source.pause();
  });
  target.on('drain', () => source.resume());
  source.on('end', () => target.end());
}
