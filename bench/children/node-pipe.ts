/**
 * The bare Node relay baseline: `net` + `pipe` in each direction, TCP_NODELAY like the daemon,
 * nothing else. Usage: node node-pipe.mjs TARGET_PORT (on 127.0.0.1).
 *
 * Node built-ins only: the bench transpiles this file and runs it without a loader.
 * Prints {"port": N} on stdout once it listens.
 */
import net from 'node:net';

const target = Number(process.argv[2]);

const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
  const upstream = net.connect({ host: '127.0.0.1', port: target, allowHalfOpen: true, noDelay: true });
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
});
server.on('error', (error) => {
  process.stderr.write(`node-pipe: ${error.message}\n`);
});
server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as net.AddressInfo).port })}\n`);
});
