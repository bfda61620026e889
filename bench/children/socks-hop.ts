/**
 * The bench's SOCKS5 hop, standing in for Tor: a lean RFC 1928/1929 server in its own process
 * that, after the handshake, only pipes. It connects to 127.0.0.1 and nothing else: a request
 * for 127.0.0.1 or a name under `bench.test` goes to 127.0.0.1 on the requested port, anything
 * else is refused (reply 0x02). Any username/password is accepted (the daemon sends one per
 * connection for Tor's circuit isolation).
 *
 * With `DELAY_MS=D` it models a Tor circuit of D ms one way: the CONNECT is answered after one
 * round trip (Tor's RELAY_BEGIN and CONNECTED), bytes sent before the answer (optimistic data)
 * reach the server with the BEGIN, after D, and every later byte takes D each way.
 *
 * Node built-ins only: the bench transpiles this file and runs it without a loader.
 * Prints {"port": N} on stdout once it listens.
 */
import net from 'node:net';

const DELAY_MS = Number(process.env.DELAY_MS ?? 0);

/**
 * Passes `from`'s bytes to `to` after the circuit's one-way delay, in order. Toward the client,
 * nothing may overtake the CONNECT reply (as Tor's CONNECTED cell precedes the data): bytes that
 * are due before `opened` resolves wait for it.
 */
function delayedPipe(from: net.Socket, to: net.Socket, opened: Promise<void> = Promise.resolve()): void {
  if (DELAY_MS === 0) {
    from.pipe(to);
    return;
  }
  let last = opened;
  const later = (step: () => void): void => {
    const delayed = new Promise<void>((resolve) => setTimeout(resolve, DELAY_MS));
    last = Promise.all([last, delayed]).then(() => {
      if (!to.destroyed) step();
    });
  };
  from.on('data', (chunk: Buffer) => later(() => {
    if (!to.writableEnded) to.write(chunk);
  }));
  from.on('end', () => later(() => to.end()));
}

const NO_AUTH = 0x00;
const USERNAME_PASSWORD = 0x02;

function reply(code: number): Buffer {
  return Buffer.from([5, code, 0, 1, 127, 0, 0, 1, 0, 0]);
}

function allowed(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === 'bench.test' || host.endsWith('.bench.test');
}

function relay(client: net.Socket, host: string, port: number, rest: Buffer): void {
  if (!allowed(host)) {
    client.end(reply(0x02));
    return;
  }
  const upstream = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true, noDelay: true });
  upstream.once('error', () => {
    client.end(reply(0x05));
  });
  upstream.once('connect', () => {
    upstream.removeAllListeners('error');
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    // BEGIN goes out (D), the exit connects, CONNECTED comes back (D); optimistic data rode with BEGIN.
    const opened = new Promise<void>((resolve) => setTimeout(() => {
      if (!client.destroyed) client.write(reply(0x00));
      resolve();
    }, 2 * DELAY_MS));
    if (rest.length > 0) {
      setTimeout(() => {
        if (!upstream.destroyed) upstream.write(rest);
      }, DELAY_MS);
    }
    delayedPipe(client, upstream);
    delayedPipe(upstream, client, opened);
    client.resume();
  });
}

const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
  let buffered: Buffer = Buffer.alloc(0);
  let stage: 'greeting' | 'auth' | 'request' = 'greeting';
  client.on('error', () => client.destroy());
  const onData = (chunk: Buffer): void => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    if (buffered.length > 1024) return void client.destroy();
    for (;;) {
      if (stage === 'greeting') {
        if (buffered.length < 2) return;
        const count = buffered[1]!;
        if (buffered.length < 2 + count) return;
        if (buffered[0] !== 5) return void client.destroy();
        const methods = buffered.subarray(2, 2 + count);
        buffered = buffered.subarray(2 + count);
        if (methods.includes(USERNAME_PASSWORD)) {
          client.write(Buffer.from([5, USERNAME_PASSWORD]));
          stage = 'auth';
        } else if (methods.includes(NO_AUTH)) {
          client.write(Buffer.from([5, NO_AUTH]));
          stage = 'request';
        } else {
          return void client.end(Buffer.from([5, 0xff]));
        }
      } else if (stage === 'auth') {
        if (buffered.length < 2) return;
        const ulen = buffered[1]!;
        if (buffered.length < 3 + ulen) return;
        const plen = buffered[2 + ulen]!;
        if (buffered.length < 3 + ulen + plen) return;
        buffered = buffered.subarray(3 + ulen + plen);
        client.write(Buffer.from([1, 0]));
        stage = 'request';
      } else {
        if (buffered.length < 5) return;
        const atyp = buffered[3];
        let host: string;
        let at: number;
        if (atyp === 1) {
          at = 8;
          host = `${buffered[4]}.${buffered[5]}.${buffered[6]}.${buffered[7]}`;
        } else if (atyp === 3) {
          at = 5 + buffered[4]!;
          host = buffered.toString('latin1', 5, Math.min(at, buffered.length));
        } else {
          return void client.end(reply(0x08));
        }
        if (buffered.length < at + 2) return;
        if (buffered[1] !== 1) return void client.end(reply(0x07));
        const port = buffered.readUInt16BE(at);
        const rest = buffered.subarray(at + 2);
        client.removeListener('data', onData);
        client.pause();
        relay(client, host, port, rest);
        return;
      }
    }
  };
  client.on('data', onData);
});
server.on('error', (error) => {
  process.stderr.write(`socks-hop: ${error.message}\n`);
});
server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as net.AddressInfo).port })}\n`);
});
