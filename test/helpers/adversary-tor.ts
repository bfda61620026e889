/**
 * Tor's SOCKS port as a fault injector: a TCP forwarder on a fixed 127.0.0.1 port in front of
 * the SOCKS5 fixture, which can stop listening (Tor not running), crash (every open stream
 * reset), and come back on the same port; plus misbehaving SOCKS ports (silent, garbage).
 */
import net from 'node:net';
import { freePort } from './ports.js';

export interface TorSwitch {
  readonly port: number;
  /** Daemon→Tor connections open now. */
  readonly open: number;
  /** Stops listening; with `crash`, also resets every open stream (Tor died, not just its listener). */
  down(options?: { crash?: boolean }): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  /** Resets every open stream (the daemon sees ECONNRESET on its connection to Tor). */
  resetAll(): void;
  close(): Promise<void>;
}

export async function startTorSwitch(target: number, options: { up?: boolean } = {}): Promise<TorSwitch> {
  const port = await freePort();
  const pairs = new Set<{ inbound: net.Socket; outbound: net.Socket }>();
  let server: net.Server | undefined;

  const listen = async (): Promise<void> => {
    const s = net.createServer({ allowHalfOpen: true }, (inbound) => {
      const outbound = net.connect({ host: '127.0.0.1', port: target, allowHalfOpen: true });
      const pair = { inbound, outbound };
      pairs.add(pair);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
      inbound.on('close', () => {
        outbound.destroy();
        pairs.delete(pair);
      });
      outbound.on('close', () => inbound.destroy());
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
        s.removeListener('error', reject);
        resolve();
      });
    });
    server = s;
  };

  const resetAll = (): void => {
    for (const { inbound, outbound } of pairs) {
      if (!inbound.destroyed) inbound.resetAndDestroy();
      outbound.destroy();
    }
  };

  /** Closes the listening socket at once (new connects are refused); accepted streams stay as they are. */
  const stopListening = (): void => {
    server?.close();
    server = undefined;
  };

  if (options.up !== false) await listen();
  return {
    port,
    get open() {
      return pairs.size;
    },
    down: async ({ crash = false } = {}) => {
      stopListening();
      if (crash) resetAll();
      await new Promise<void>((resolve) => setImmediate(resolve));
    },
    up: listen,
    resetAll,
    close: async () => {
      resetAll();
      stopListening();
      await new Promise<void>((resolve) => setImmediate(resolve));
    },
  };
}

export interface RawTcpServer {
  readonly port: number;
  /** Bytes received, per connection. */
  readonly received: Buffer[];
  /** Connections open right now. */
  readonly open: number;
  /** Resolves once no connection is open (after at least one was accepted). */
  drained(timeoutMs?: number): Promise<void>;
  /** Resolves once some connection has sent a byte. */
  firstData(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** A port that accepts and then does `behave` to each connection: stays silent, or answers garbage, or hangs up. */
export async function startRawTcpServer(behave: (socket: net.Socket) => void): Promise<RawTcpServer> {
  const received: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const waiters = new Set<() => void>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    const index = received.push(Buffer.alloc(0)) - 1;
    socket.on('data', (chunk: Buffer) => {
      received[index] = Buffer.concat([received[index]!, chunk]);
      for (const w of [...waiters]) w();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      sockets.delete(socket);
      for (const w of [...waiters]) w();
    });
    behave(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    get open() {
      return sockets.size;
    },
    drained: (timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (accepted > 0 && sockets.size === 0) {
            done();
            resolve();
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${sockets.size} connection(s) still open after ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
    firstData: (timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (received.some((b) => b.length > 0)) {
            done();
            resolve();
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no byte within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
