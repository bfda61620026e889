/**
 * Both ends of an attack, on real sockets: a Peer records every raw byte it receives, can wait
 * for a byte pattern (an awaited event, never a sleep), and can switch to real TLS at any offset
 * of what it has received, through a Duplex view over the raw socket, so the raw bytes stay
 * recorded while TLS runs on top (the attacker sees exactly what the daemon sent it).
 */
import net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';

/** How long a peer waits for a pattern before the scenario fails (never reached when it passes). */
export const WAIT_MS = 10_000;

export class Peer {
  readonly socket: net.Socket;
  received: Buffer = Buffer.alloc(0);
  /** Everything written to the socket, raw or through the TLS view. */
  sent: Buffer = Buffer.alloc(0);
  /** Set once the socket closed; `reset` when the close came with an error (e.g. ECONNRESET). */
  closeInfo: { readonly ended: boolean; readonly error?: string } | undefined;
  readonly closed: Promise<void>;
  #gotEnd = false;
  #error: string | undefined;
  #waiters = new Set<() => void>();
  #view: Duplex | undefined;
  #viewFrom = 0;

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      const start = this.received.length;
      this.received = Buffer.concat([this.received, chunk]);
      if (this.#view) {
        const part = chunk.subarray(Math.max(0, this.#viewFrom - start));
        if (part.length > 0) this.#view.push(part);
      }
      for (const wake of [...this.#waiters]) wake();
    });
    socket.on('end', () => {
      this.#gotEnd = true;
      this.#view?.push(null);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.#error = error.code ?? error.message;
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.closeInfo = { ended: this.#gotEnd, ...(this.#error ? { error: this.#error } : {}) };
        this.#view?.destroy();
        for (const wake of [...this.#waiters]) wake();
        resolve();
      });
    });
  }

  write(data: string | Buffer): void {
    if (this.socket.destroyed) return;
    this.#recordSent(Buffer.from(data));
    this.socket.write(data);
  }

  #recordSent(chunk: Buffer): void {
    this.sent = Buffer.concat([this.sent, chunk]);
    for (const wake of [...this.#waiters]) wake();
  }

  /** Resolves once more than `length` bytes were written (raw or through TLS), and flushed to the kernel. */
  waitForSent(length: number, timeoutMs = WAIT_MS): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (this.sent.length > length) {
          done();
          this.socket.write('', () => resolve());
        } else if (this.closeInfo) {
          done();
          reject(new Error('closed before writing'));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`nothing written within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Offset just past the first occurrence of `pattern` at or after `from`; rejects if the socket closes first. */
  waitFor(pattern: string | Buffer, from = 0, timeoutMs = WAIT_MS): Promise<number> {
    const needle = typeof pattern === 'string' ? Buffer.from(pattern) : pattern;
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const at = this.received.indexOf(needle, from);
        if (at >= 0) {
          done();
          resolve(at + needle.length);
        } else if (this.closeInfo) {
          done();
          reject(new Error(`closed before ${JSON.stringify(needle.toString('latin1').slice(0, 60))}; received ${JSON.stringify(this.received.toString('latin1').slice(0, 400))}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${JSON.stringify(needle.toString('latin1').slice(0, 60))} within ${timeoutMs} ms; received ${JSON.stringify(this.received.toString('latin1').slice(0, 400))}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Resolves when the socket has closed, failing the wait after `timeoutMs`. */
  async waitForClose(timeoutMs = WAIT_MS): Promise<NonNullable<Peer['closeInfo']>> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still open after ${timeoutMs} ms; received ${JSON.stringify(this.received.toString('latin1').slice(0, 400))}`)), timeoutMs);
    });
    try {
      await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return this.closeInfo!;
  }

  /** The bytes received from `from` on, as a string (latin1 keeps binary bytes one to one). */
  after(from: number): Buffer {
    return this.received.subarray(from);
  }

  text(from = 0, to = this.received.length): string {
    return this.received.toString('utf8', from, to);
  }

  /** Closes with a TCP RST. */
  reset(): void {
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }

  /**
   * A duplex over this socket whose readable side starts at byte `from` of the received stream
   * (which may not have arrived yet) and goes on with everything received later: the stream TLS runs on.
   */
  view(from: number): Duplex {
    if (this.#view) throw new Error('Peer: one view per socket');
    const socket = this.socket;
    const record = (chunk: Buffer): void => this.#recordSent(chunk);
    const view = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        if (socket.destroyed) return callback();
        record(chunk);
        socket.write(chunk, () => callback());
      },
      final(callback) {
        socket.end();
        callback();
      },
      destroy(error, callback) {
        socket.destroy();
        callback(error);
      },
    });
    this.#view = view;
    this.#viewFrom = from;
    const pending = this.received.subarray(from);
    if (pending.length > 0) view.push(pending);
    if (this.#gotEnd) view.push(null);
    return view;
  }

  /** Client side of TLS from byte `from` on; resolves once the handshake completed and the certificate checked out. */
  async tlsClient(from: number, servername: string, ca: string): Promise<tls.TLSSocket> {
    const secure = tls.connect({ socket: this.view(from), servername, ca });
    secure.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
      secure.once('close', () => reject(new Error('TLS closed before the handshake completed')));
    });
    return secure;
  }

  /** Client side of TLS from byte `from` on, without waiting: for a ClientHello pipelined before <proceed/>. */
  tlsClientNow(from: number, servername: string, ca: string): { secure: tls.TLSSocket; connected: Promise<void> } {
    const secure = tls.connect({ socket: this.view(from), servername, ca });
    secure.on('error', () => {});
    const connected = new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
      secure.once('close', () => reject(new Error('TLS closed before the handshake completed')));
    });
    return { secure, connected };
  }

  /** Server side of TLS from byte `from` on, echoing whatever arrives inside it into `decrypted` and back. */
  tlsServer(from: number, key: string, cert: string): TlsEcho {
    const secure = new tls.TLSSocket(this.view(from), { isServer: true, key, cert });
    const echo: TlsEcho = { secure, decrypted: Buffer.alloc(0), error: undefined };
    secure.on('data', (data: Buffer) => {
      echo.decrypted = Buffer.concat([echo.decrypted, data]);
      secure.write(data);
    });
    secure.on('end', () => secure.end());
    secure.on('error', (error: NodeJS.ErrnoException) => {
      echo.error = error.code ?? error.message;
      this.socket.destroy();
    });
    return echo;
  }
}

export interface TlsEcho {
  readonly secure: tls.TLSSocket;
  decrypted: Buffer;
  error: string | undefined;
}

/** Reads `n` bytes of plaintext from a TLS socket. */
export function readTls(secure: tls.TLSSocket, n: number, timeoutMs = WAIT_MS): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const onData = (data: Buffer): void => {
      got = Buffer.concat([got, data]);
      if (got.length >= n) {
        done();
        resolve(got);
      }
    };
    const onClose = (): void => {
      done();
      reject(new Error(`TLS closed after ${got.length} of ${n} bytes`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`only ${got.length} of ${n} TLS bytes within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      secure.removeListener('data', onData);
      secure.removeListener('close', onClose);
    };
    secure.on('data', onData);
    secure.on('close', onClose);
  });
}

export async function connectPeer(port: number): Promise<Peer> {
  // Like a real client, it closes its side when the daemon closes its own.
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  const peer = new Peer(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return peer;
}

export interface PeerServer {
  readonly port: number;
  readonly peers: Peer[];
  /** The n-th connection (0-based), once it is there. */
  peer(index: number, timeoutMs?: number): Promise<Peer>;
  close(): Promise<void>;
}

/**
 * A TCP server on 127.0.0.1 port 0 whose every connection is handed to `script` as a Peer.
 * A script's rejection (e.g. a wait that failed because the daemon hung up) is kept on the
 * server, not thrown: the scenario asserts what each side received.
 */
export async function startPeerServer(script: (peer: Peer, index: number) => Promise<void> | void): Promise<PeerServer> {
  const peers: Peer[] = [];
  const waiters = new Set<() => void>();
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    const peer = new Peer(socket);
    const index = peers.length;
    peers.push(peer);
    for (const wake of [...waiters]) wake();
    void Promise.resolve()
      .then(() => script(peer, index))
      .catch(() => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    peers,
    peer: (index, timeoutMs = WAIT_MS) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const found = peers[index];
          if (found) {
            done();
            resolve(found);
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no connection #${index} within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
    close: async () => {
      for (const peer of peers) peer.socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
