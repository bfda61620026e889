import net from 'node:net';

/** Part of the daemon's stream error for a header without `to` (src/policy/negotiation.ts, client-no-domain). */
const DAEMON_ANSWER = 'did not say which server it wants';

/**
 * Whether what listens at host:port answers like this daemon's connect-server door: it is sent
 * an XMPP stream header without `to`, which the daemon refuses at once with its own words and
 * without going anywhere (no server named, so nothing reaches Tor). For when /proc cannot tell.
 */
export function answersLikeDaemon(host: string, port: number, timeoutMs = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    let received = '';
    const socket = net.connect({ host, port });
    const done = (answer: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    timer.unref();
    socket.once('connect', () => {
      socket.write("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('utf8');
      if (received.includes(DAEMON_ANSWER)) done(true);
      else if (received.length > 16_384) done(false);
    });
    socket.once('close', () => done(received.includes(DAEMON_ANSWER)));
    socket.once('error', () => done(false));
  });
}
