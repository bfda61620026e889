/**
 * A minimal SOCKS5 server (RFC 1928, RFC 1929 user/password accepted as given) for the churn
 * test: CONNECT to a name it maps to a 127.0.0.1 port, else reply 0x04. Unlike a pipe() pair,
 * it tears both sockets down as soon as either side is gone, so an upstream never outlives its
 * client here and the churn test measures the daemon's leaks, not the fixture's.
 */
import net from 'node:net';

export interface LeanSocks {
  readonly port: number;
  /** Sockets open right now, both sides. */
  open(): number;
  close(): Promise<void>;
}

export async function startLeanSocks(resolve: (host: string) => number | undefined): Promise<LeanSocks> {
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
  };
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    track(client);
    let buffered = Buffer.alloc(0);
    let stage: 'greeting' | 'auth' | 'request' | 'done' = 'greeting';
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        if (stage === 'greeting') {
          if (buffered.length < 2 || buffered.length < 2 + buffered[1]!) return;
          const methods = buffered.subarray(2, 2 + buffered[1]!);
          buffered = buffered.subarray(2 + buffered[1]!);
          const auth = methods.includes(2);
          client.write(Buffer.from([5, auth ? 2 : 0]));
          stage = auth ? 'auth' : 'request';
        } else if (stage === 'auth') {
          if (buffered.length < 2) return;
          const ulen = buffered[1]!;
          if (buffered.length < 3 + ulen || buffered.length < 3 + ulen + buffered[2 + ulen]!) return;
          buffered = buffered.subarray(3 + ulen + buffered[2 + ulen]!);
          client.write(Buffer.from([1, 0]));
          stage = 'request';
        } else if (stage === 'request') {
          if (buffered.length < 5 || buffered[3] !== 3) return void (buffered.length >= 5 && client.destroy());
          const len = buffered[4]!;
          if (buffered.length < 7 + len) return;
          const host = buffered.subarray(5, 5 + len).toString();
          const rest = buffered.subarray(7 + len);
          stage = 'done';
          client.removeListener('data', onData);
          return void connect(host, rest);
        } else return;
      }
    };
    const reply = (code: number): void => void client.write(Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]));
    const connect = (host: string, rest: Buffer): void => {
      const port = resolve(host);
      if (port === undefined) {
        reply(4);
        return void client.end();
      }
      const upstream = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
      track(upstream);
      const both = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', both);
      upstream.on('close', both);
      upstream.once('connect', () => {
        // The client gave up while the upstream was connecting: nobody to relay for.
        if (clientEnded) return both();
        reply(0);
        if (rest.length > 0) upstream.write(rest);
        client.on('data', (d: Buffer) => upstream.write(d));
        upstream.on('data', (d: Buffer) => client.write(d));
        let ends = 0;
        const ended = (other: net.Socket) => (): void => {
          other.end();
          if (++ends === 2) both();
        };
        client.on('end', ended(upstream));
        upstream.on('end', ended(client));
      });
    };
    let clientEnded = false;
    client.on('data', onData);
    client.once('end', () => {
      clientEnded = true;
      if (stage !== 'done') client.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    open: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
