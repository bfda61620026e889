import net from 'node:net';
import type { CheckLine } from '../check-line.js';
import { describeDoor, type DoorAddress } from '../doors.js';
import { answersLikeDaemon } from './connect-door-probe.js';
import { listenerOwners } from './listener-owner.js';
import { socks5Greeting } from '../../proxy/tor-probe.js';

/**
 * A door's address must be free (the daemon will open it) or already held by the daemon or by
 * systemd for it (socket activation). Anything else listening there is a problem.
 */
export async function checkDoor(door: DoorAddress, options: { procRoot?: string; flag: string } = { flag: '--listen' }): Promise<CheckLine> {
  const name = describeDoor(door);
  const bound = await tryListen(door.host, door.port);
  if (bound === undefined) return { status: 'ok', text: `${name}: free, the daemon can open it (it is not running)` };
  if (bound === 'EADDRNOTAVAIL') {
    return { status: 'fail', text: `${name}: this machine has no such address`, fix: `use 127.0.0.1 (${options.flag} 127.0.0.1:${door.port})` };
  }
  if (bound !== 'EADDRINUSE') return { status: 'fail', text: `${name}: cannot be opened (${bound})`, fix: `choose a port above 1023 (${options.flag} 127.0.0.1:PORT)` };

  const owners = listenerOwners(door.port, options.procRoot);
  const daemon = owners.find((o) => o.isDaemon);
  if (daemon) return { status: 'ok', text: `${name}: xmpp-onion-proxy listens there (pid ${daemon.pid})` };
  if (owners.length > 0 && owners.every((o) => o.isSystemd)) {
    return { status: 'ok', text: `${name}: held by systemd for socket activation (xmpp-onion-proxy*.socket)` };
  }
  const others = owners.filter((o) => !o.isSystemd);
  if (others.length > 0) {
    const who = others.map((o) => `${o.name} (pid ${o.pid})`).join(', ');
    return { status: 'fail', text: `${name}: taken by ${who}`, fix: `stop it, or give the daemon another port (${options.flag} 127.0.0.1:PORT) and tell your client the same` };
  }
  // The owner is another user's process (a systemd DynamicUser service, say): ask the socket itself.
  if (door.kind === 'connect-server' && (await answersLikeDaemon(door.host, door.port))) {
    return { status: 'ok', text: `${name}: answers like xmpp-onion-proxy (its process belongs to another user)` };
  }
  if (door.kind === 'socks' && (await socks5Greeting({ kind: 'tcp', host: door.host, port: door.port })).ok) {
    return { status: 'warn', text: `${name}: a SOCKS5 server answers, whose process this user cannot see; run doctor as root to tell whether it is xmpp-onion-proxy` };
  }
  return { status: 'fail', text: `${name}: in use by something that is not xmpp-onion-proxy (its process belongs to another user)`, fix: `find it with \`sudo ss -ltnp 'sport = :${door.port}'\`, stop it or give the daemon another port (${options.flag})` };
}

/** undefined when host:port could be listened on (and was closed again), else the error code. */
function tryListen(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}
