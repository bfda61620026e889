import net from 'node:net';
import { SocksClient } from 'socks';

export interface SocksForwarder {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Stands in for a client's own per-account SOCKS5 proxy setting (Pidgin's "Tor/Privacy"):
 * each connection to this local port is opened through the SOCKS door to `destination` as a
 * host name, so clients without SOCKS support (@xmpp/client, go-sendxmpp) can use the door.
 */
export async function startSocksForwarder(
  socksPort: number,
  destination: { host: string; port: number },
  credentials?: { username: string; password: string },
): Promise<SocksForwarder> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (local) => {
    sockets.add(local);
    local.on('close', () => sockets.delete(local));
    local.on('error', () => {});
    local.pause();
    SocksClient.createConnection({
      proxy: { host: '127.0.0.1', port: socksPort, type: 5, ...(credentials ? { userId: credentials.username, password: credentials.password } : {}) },
      command: 'connect',
      destination,
      timeout: 20_000,
    }).then(({ socket }) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => local.destroy());
      local.on('error', () => socket.destroy());
      local.pipe(socket);
      socket.pipe(local);
      local.resume();
    }, () => local.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
