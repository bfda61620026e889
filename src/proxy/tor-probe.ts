import net from 'node:net';
import type { Endpoint } from '../common/endpoint.js';

export type GreetingResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly problem: 'refused' | 'no-such-socket' | 'permission' | 'timeout' | 'closed' | 'not-socks5' | 'needs-auth' | 'error'; readonly detail: string };

/**
 * Opens a connection and offers SOCKS5 with "no authentication" (RFC 1928 §3); a SOCKS5 server
 * such as Tor answers 05 00. Proves a SOCKS5 server listens, not merely a TCP port; asks it to
 * connect nowhere.
 */
export function socks5Greeting(endpoint: Endpoint, timeoutMs = 3000): Promise<GreetingResult> {
  return new Promise((resolve) => {
    const socket = endpoint.kind === 'tcp' ? net.connect({ host: endpoint.host, port: endpoint.port }) : net.connect({ path: endpoint.path });
    let reply = Buffer.alloc(0);
    let settled = false;
    const done = (result: GreetingResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done({ ok: false, problem: 'timeout', detail: `no answer within ${timeoutMs / 1000} s` }), timeoutMs);
    timer.unref();
    socket.once('connect', () => socket.write(Buffer.from([0x05, 0x01, 0x00])));
    socket.on('data', (chunk: Buffer) => {
      reply = Buffer.concat([reply, chunk]);
      if (reply.length < 2) return;
      if (reply[0] !== 0x05) done({ ok: false, problem: 'not-socks5', detail: `it answered ${JSON.stringify(reply.subarray(0, 16).toString('latin1'))}, not SOCKS5` });
      else if (reply[1] === 0x00) done({ ok: true });
      else done({ ok: false, problem: 'needs-auth', detail: `it refused "no authentication" (method 0x${reply[1]!.toString(16).padStart(2, '0')})` });
    });
    socket.once('end', () => done({ ok: false, problem: 'closed', detail: 'it closed the connection without a SOCKS5 answer' }));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      const problem = error.code === 'ECONNREFUSED' ? 'refused' : error.code === 'ENOENT' ? 'no-such-socket' : error.code === 'EACCES' ? 'permission' : 'error';
      done({ ok: false, problem, detail: error.code ?? error.message });
    });
  });
}
