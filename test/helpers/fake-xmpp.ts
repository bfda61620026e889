import net from 'node:net';
import tls from 'node:tls';
import { SERVER_HEADER } from './policy-driver.js';

export const FEATURES_STARTTLS = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>";
export const PROCEED = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

export interface FakeConnection {
  /** Every byte the server received before TLS (what the daemon forwarded in clear). */
  plaintext: Buffer;
  /** Bytes received inside TLS, decrypted. */
  decrypted: Buffer;
  socket: net.Socket;
  tlsSocket?: tls.TLSSocket;
}

export type Script = (socket: net.Socket, connection: FakeConnection) => void;

export interface FakeXmppServer {
  readonly port: number;
  readonly connections: FakeConnection[];
  /** Resolves with the next connection once it has closed. */
  nextClosed(): Promise<FakeConnection>;
  close(): Promise<void>;
}

/**
 * A well-behaved STARTTLS server: header and features after the client's header, <proceed/>
 * after <starttls/>, then real TLS (test certificate) and an echo of whatever arrives inside.
 */
export function honestScript(key: string, cert: string, features = FEATURES_STARTTLS): Script {
  return (socket, connection) => {
    let buffered = Buffer.alloc(0);
    let sentFeatures = false;
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      if (!sentFeatures && buffered.includes('<stream:stream')) {
        sentFeatures = true;
        socket.write(SERVER_HEADER + features);
      }
      const at = buffered.indexOf('<starttls');
      const end = at < 0 ? -1 : buffered.indexOf('/>', at);
      if (end < 0) return;
      socket.removeListener('data', onData);
      socket.write(PROCEED);
      const extra = buffered.subarray(end + 2);
      if (extra.length > 0) socket.unshift(extra);
      const secure = new tls.TLSSocket(socket, { isServer: true, key, cert });
      connection.tlsSocket = secure;
      secure.on('data', (data: Buffer) => {
        connection.decrypted = Buffer.concat([connection.decrypted, data]);
        secure.write(data);
      });
      secure.on('end', () => secure.end());
      secure.on('error', () => socket.destroy());
    };
    socket.on('data', onData);
  };
}

export async function startFakeXmppServer(script: Script, port = 0): Promise<FakeXmppServer> {
  const connections: FakeConnection[] = [];
  const waiters: Array<(c: FakeConnection) => void> = [];
  const closedQueue: FakeConnection[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    const connection: FakeConnection = { plaintext: Buffer.alloc(0), decrypted: Buffer.alloc(0), socket };
    connections.push(connection);
    socket.on('error', () => {});
    const record = (chunk: Buffer): void => {
      if (!connection.tlsSocket) connection.plaintext = Buffer.concat([connection.plaintext, chunk]);
    };
    socket.on('data', record);
    socket.on('end', () => {
      if (!connection.tlsSocket) socket.end();
    });
    socket.on('close', () => {
      sockets.delete(socket);
      const waiter = waiters.shift();
      if (waiter) waiter(connection);
      else closedQueue.push(connection);
    });
    script(socket, connection);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    nextClosed: () => {
      const ready = closedQueue.shift();
      return ready ? Promise.resolve(ready) : new Promise((resolve) => waiters.push(resolve));
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
