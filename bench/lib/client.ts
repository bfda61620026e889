/**
 * The bench's XMPP client: connects to a target (speaking XMPP to the daemon's connect-server
 * door, or SOCKS5 first, to the hop directly or through a transparent relay, or to the daemon's
 * SOCKS door), negotiates STARTTLS, then real TLS or records mode.
 */
import net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import {
  clientHeader, domainFor, endAfter, HANDSHAKE, helloRecord, recordEnd, StreamReader, STARTTLS, type Mode,
} from './wire.js';

export interface Target {
  /** What the client speaks first: XMPP (the daemon's connect-server door) or SOCKS5. */
  readonly speaks: 'xmpp' | 'socks';
  readonly port: number;
}

export interface ClientContext {
  /** The bench XMPP server's port: what the client asks the SOCKS hop for. */
  readonly serverPort: number;
  readonly secureContext: tls.SecureContext;
  readonly timeoutMs: number;
}

export interface Connection {
  readonly socket: net.Socket;
  /** The TLS socket in TLS mode, the TCP socket in records mode. */
  readonly stream: Duplex;
  /** Reads `stream` (what arrived after the handshake is kept). */
  readonly reader: StreamReader;
  /** ms from connect() to TLS established (TLS mode) or the server's first record (records mode). */
  readonly setupMs: number;
  close(): void;
}

function socksRequest(host: string, port: number): Buffer {
  const name = Buffer.from(host, 'latin1');
  return Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 0xff])]);
}

function socksReplyEnd(b: Buffer): number {
  if (b.length < 5) return -1;
  const atyp = b[3];
  const end = atyp === 1 ? 10 : atyp === 4 ? 22 : atyp === 3 ? 7 + b[4]! : 10;
  return b.length >= end ? end : -1;
}

/**
 * Opens one connection and takes it to "encrypted": TLS established, or, in records mode, the
 * client's handshake record (holding `command`) answered. In TLS mode `command` (if any) is
 * then sent as the first line inside TLS.
 */
export async function openConnection(target: Target, mode: Mode, context: ClientContext, command?: string): Promise<Connection> {
  const started = performance.now();
  const domain = domainFor(mode);
  const socket = net.connect({ host: '127.0.0.1', port: target.port, noDelay: true });
  socket.on('error', () => {});
  const reader = new StreamReader(socket);
  const timeout = context.timeoutMs;
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    if (target.speaks === 'socks') {
      socket.write(Buffer.from([5, 1, 0]));
      const method = await reader.takeBytes(2, timeout);
      if (method[0] !== 5 || method[1] !== 0) throw new Error(`SOCKS method answer ${method.toString('hex')}`);
      socket.write(socksRequest(domain, context.serverPort));
      const reply = await reader.take(socksReplyEnd, timeout);
      if (reply[1] !== 0) throw new Error(`SOCKS reply 0x${reply[1]?.toString(16)}`);
    }
    socket.write(clientHeader(domain));
    const features = await reader.take(endAfter('</stream:features'), timeout);
    if (!features.includes('<starttls')) throw new Error(`no STARTTLS offered: ${features.toString('latin1', 0, 300)}`);
    socket.write(STARTTLS);
    await reader.take(endAfter('<proceed', '/>'), timeout);
    if (mode === 'records') {
      socket.write(helloRecord('client', command ?? 'IDLE'));
      const answer = await reader.take(recordEnd, timeout);
      if (answer[0] !== HANDSHAKE) throw new Error(`records mode: unexpected first record ${answer.toString('hex', 0, 8)}`);
      return { socket, stream: socket, reader, setupMs: performance.now() - started, close: () => socket.destroy() };
    }
    const rest = reader.detach();
    if (rest.length > 0) socket.unshift(rest);
    const secure = tls.connect({ socket, servername: domain, secureContext: context.secureContext });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`TLS not established within ${timeout} ms`)), timeout);
      secure.once('secureConnect', () => {
        clearTimeout(timer);
        resolve();
      });
      secure.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    const setupMs = performance.now() - started;
    secure.on('error', () => socket.destroy());
    if (command !== undefined) secure.write(`${command}\n`);
    return { socket, stream: secure, reader: new StreamReader(secure), setupMs, close: () => secure.destroy() };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}
