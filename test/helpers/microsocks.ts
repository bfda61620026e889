import net from 'node:net';
import { freePort } from './ports.js';
import { exited, spawnTied, terminate } from './prosody.js';

export interface Microsocks {
  readonly port: number;
  stop(): Promise<void>;
}

/** Debian's microsocks: a small real SOCKS5 server on 127.0.0.1, standing in for Tor where no onion is needed. */
export async function startMicrosocks(): Promise<Microsocks> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawnTied('microsocks', ['-i', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    if (await answers(port, child)) return { port, stop: () => terminate(child) };
    await terminate(child);
  }
  throw new Error('microsocks did not start (is the Debian package installed?)');
}

async function answers(port: number, child: ReturnType<typeof spawnTied>): Promise<boolean> {
  const deadline = Date.now() + 5000;
  const gone = exited(child).then(() => false);
  while (Date.now() < deadline) {
    const up = await Promise.race([gone, new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    })]);
    if (up || child.exitCode !== null) return up;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return false;
}
