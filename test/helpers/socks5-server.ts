import net from 'node:net';

export interface SocksRequest {
  readonly host: string;
  readonly port: number;
  readonly atyp: 'domain' | 'ipv4' | 'ipv6';
  readonly username?: string;
  readonly password?: string;
}

export interface SocksFixtureOptions {
  /** Where a requested host:port really goes (like Tor resolving a name); undefined → reply 0x04. */
  readonly resolve: (host: string, port: number) => number | undefined;
  /** Answer every CONNECT with this reply code instead of connecting. */
  reply?: number;
}

export interface SocksFixture {
  readonly port: number;
  readonly requests: SocksRequest[];
  setReply(code: number | undefined): void;
  close(): Promise<void>;
}

/**
 * A real SOCKS5 server (RFC 1928 / 1929) for tests, connecting only to 127.0.0.1 ports that
 * `resolve` names. It records every request so tests can see what the daemon asked Tor for.
 */
export async function startSocks5Fixture(options: SocksFixtureOptions): Promise<SocksFixture> {
  const requests: SocksRequest[] = [];
  const sockets = new Set<net.Socket>();
  let reply = options.reply;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    void handshake(socket).catch(() => socket.destroy());
  });

  async function handshake(socket: net.Socket): Promise<void> {
    const reader = byteReader(socket);
    const [version, count] = await reader(2);
    if (version !== 5) throw new Error('not SOCKS5');
    const methods = await reader(count!);
    let username: string | undefined;
    let password: string | undefined;
    if (methods.includes(2)) {
      socket.write(Buffer.from([5, 2]));
      const [, ulen] = await reader(2);
      username = (await reader(ulen!)).toString();
      const [plen] = await reader(1);
      password = (await reader(plen!)).toString();
      socket.write(Buffer.from([1, 0]));
    } else {
      socket.write(Buffer.from([5, 0]));
    }
    const [, command, , atyp] = await reader(4);
    let host: string;
    let kind: SocksRequest['atyp'];
    if (atyp === 3) {
      const [len] = await reader(1);
      host = (await reader(len!)).toString();
      kind = 'domain';
    } else if (atyp === 1) {
      host = [...(await reader(4))].join('.');
      kind = 'ipv4';
    } else {
      const raw = await reader(16);
      host = Array.from({ length: 8 }, (_, i) => raw.readUInt16BE(i * 2).toString(16)).join(':');
      kind = 'ipv6';
    }
    const port = (await reader(2)).readUInt16BE(0);
    requests.push({ host, port, atyp: kind, ...(username !== undefined ? { username, password } : {}) });
    const answer = (code: number): void => {
      socket.write(Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]));
    };
    if (command !== 1) return void (answer(7), socket.end());
    if (reply !== undefined) return void (answer(reply), socket.end());
    const target = options.resolve(host, port);
    if (target === undefined) return void (answer(4), socket.end());
    const upstream = net.connect({ host: '127.0.0.1', port: target, allowHalfOpen: true });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.once('error', () => {
      answer(5);
      socket.end();
    });
    upstream.once('connect', () => {
      upstream.removeAllListeners('error');
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
      socket.on('close', () => upstream.destroy());
      upstream.on('close', () => socket.destroy());
      answer(0);
      const rest = reader.rest();
      if (rest.length > 0) upstream.write(rest);
      socket.pipe(upstream);
      upstream.pipe(socket);
    });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    setReply: (code) => {
      reply = code;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type Reader = ((n: number) => Promise<Buffer>) & { rest(): Buffer };

function byteReader(socket: net.Socket): Reader {
  let buffered = Buffer.alloc(0);
  let waiting: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  const pump = (): void => {
    if (waiting && buffered.length >= waiting.n) {
      const { n, resolve } = waiting;
      waiting = undefined;
      const out = buffered.subarray(0, n);
      buffered = buffered.subarray(n);
      resolve(out);
    }
  };
  const onData = (chunk: Buffer): void => {
    buffered = Buffer.concat([buffered, chunk]);
    pump();
  };
  socket.on('data', onData);
  socket.once('close', () => waiting?.reject(new Error('closed')));
  const read = ((n: number) => new Promise<Buffer>((resolve, reject) => {
    waiting = { n, resolve, reject };
    pump();
  })) as Reader;
  read.rest = () => {
    socket.removeListener('data', onData);
    return buffered;
  };
  return read;
}
