/**
 * The bench's XMPP server: an honest STARTTLS negotiation (header, features with
 * <starttls><required/>, <proceed/>), then by the stream's `to`:
 *   tls.bench.test      real TLS (test certificate), then a command in the first line inside TLS;
 *   records.bench.test  TLS-framed records without cryptography: the client's first record
 *                       (type handshake) holds the command, the server answers a handshake
 *                       record "OK", then application-data records.
 * Commands: `BULK n` (send n bytes while reading n), `ECHO` (echo everything), `IDLE`.
 */
import net from 'node:net';
import tls from 'node:tls';
import {
  endAfter, FEATURES, HANDSHAKE, helloRecord, helloText, PROCEED, recordChunk, recordEnd, RECORDS_DOMAIN, sendBulk, serverHeader, StreamReader, STARTTLS,
} from './wire.js';

export interface BenchServer {
  readonly port: number;
  /** Connections open right now. */
  readonly open: number;
  /** Resolves once at most `n` connections are open (bounded). */
  drainedTo(n: number, timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

const TLS_CHUNK = Buffer.alloc(64 * 1024, 0x61);
export const RECORDS_CHUNK = recordChunk(4);

export async function startBenchServer(key: string, cert: string): Promise<BenchServer> {
  const secureContext = tls.createSecureContext({ key, cert });
  const sockets = new Set<net.Socket>();
  let nextId = 1;
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.on('end', () => socket.end());
    void negotiate(socket, nextId++, secureContext).catch(() => socket.destroy());
  });
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get open() {
      return sockets.size;
    },
    drainedTo: async (n, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      while (sockets.size > n && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      return sockets.size <= n;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function negotiate(socket: net.Socket, id: number, secureContext: tls.SecureContext): Promise<void> {
  const reader = new StreamReader(socket);
  const header = (await reader.take(endAfter('<stream:stream'))).toString('latin1');
  const to = /\sto=['"]([^'"]+)['"]/.exec(header)?.[1] ?? 'bench.test';
  socket.write(serverHeader(to, id) + FEATURES);
  await reader.take(endAfter(STARTTLS.slice(0, 9), '/>'));
  socket.write(PROCEED);
  if (to === RECORDS_DOMAIN) return recordsMode(socket, reader);
  const rest = reader.detach();
  socket.on('error', () => socket.destroy());
  if (rest.length > 0) socket.unshift(rest);
  const secure = new tls.TLSSocket(socket, { isServer: true, secureContext });
  secure.on('error', () => socket.destroy());
  secure.on('end', () => secure.end());
  const inner = new StreamReader(secure);
  const command = (await inner.take((b) => {
    const newline = b.indexOf(10);
    return newline < 0 ? -1 : newline + 1;
  }, 0)).toString('latin1').trim();
  serve(command, secure, inner, TLS_CHUNK);
}

async function recordsMode(socket: net.Socket, reader: StreamReader): Promise<void> {
  const first = await reader.take(recordEnd, 0);
  if (first[0] !== HANDSHAKE) throw new Error('records mode: the first record is not a handshake');
  socket.write(helloRecord('server', 'OK'));
  serve(helloText(first), socket, reader, RECORDS_CHUNK);
}

function serve(command: string, stream: net.Socket | tls.TLSSocket, reader: StreamReader, chunk: Buffer): void {
  const [verb, size] = command.split(' ');
  if (verb === 'BULK') {
    const total = Number(size);
    void Promise.all([sendBulk(stream, total, chunk), reader.count(total)]).catch(() => stream.destroy());
  } else if (verb === 'ECHO') {
    reader.forward((data) => stream.write(data));
  }
  // IDLE: nothing until the client closes.
}
