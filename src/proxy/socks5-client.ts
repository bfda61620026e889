import net from 'node:net';

export interface Socks5Destination {
  readonly host: string;
  readonly port: number;
}

export type Socks5Outcome =
  /** The socket is paused, any bytes after the reply put back: the next reader gets them all. */
  | { readonly ok: true }
  /** The server answered the CONNECT with this RFC 1928 (or Tor extended) reply code. */
  | { readonly ok: false; readonly why: 'reply'; readonly code: number }
  | { readonly ok: false; readonly why: 'protocol' | 'closed' | 'timeout' | 'aborted' };

const VERSION = 5;
const NO_AUTH = 0x00;
const USERNAME_PASSWORD = 0x02;

/**
 * The client side of RFC 1928/1929 on a connected socket: method selection, optional
 * username/password, CONNECT. Host names go as ATYP domain, unresolved. One timer over the
 * whole exchange, cleared when it ends, so nothing outlives the handshake. Messages are sent
 * one at a time: some servers (microsocks) drop bytes that come before they ask for them.
 */
export function socks5Handshake(
  socket: net.Socket,
  destination: Socks5Destination,
  credentials: { readonly username: string; readonly password: string } | undefined,
  timeoutMs: number,
  signal?: AbortSignal,
  /** Written right behind the CONNECT request: Tor sends it with its BEGIN cell (optimistic data). */
  optimistic?: Buffer,
): Promise<Socks5Outcome> {
  return new Promise((resolve) => {
    let buffered: Buffer = Buffer.alloc(0);
    let stage: 'method' | 'auth' | 'reply' = 'method';
    const finish = (outcome: Socks5Outcome): void => {
      clearTimeout(timer);
      // Paused before the reader goes, so nothing Tor or the server sends next is emitted to no one.
      socket.pause();
      socket.removeListener('data', onData);
      socket.removeListener('end', onClosed);
      socket.removeListener('close', onClosed);
      socket.removeListener('error', onClosed);
      signal?.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    const connect = (): void => {
      socket.write(optimistic ? Buffer.concat([connectRequest(destination), optimistic]) : connectRequest(destination));
    };
    const onClosed = (): void => finish({ ok: false, why: 'closed' });
    const onAbort = (): void => finish({ ok: false, why: 'aborted' });

    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      for (;;) {
        if (stage === 'method') {
          if (buffered.length < 2) return;
          const chosen = buffered[1];
          const acceptable = chosen === NO_AUTH || (credentials !== undefined && chosen === USERNAME_PASSWORD);
          if (buffered[0] !== VERSION || !acceptable) return finish({ ok: false, why: 'protocol' });
          buffered = buffered.subarray(2);
          if (credentials && chosen === USERNAME_PASSWORD) {
            stage = 'auth';
            socket.write(authRequest(credentials.username, credentials.password));
          } else {
            stage = 'reply';
            connect();
          }
          continue;
        }
        if (stage === 'auth') {
          if (buffered.length < 2) return;
          if (buffered[0] !== 1 || buffered[1] !== 0) return finish({ ok: false, why: 'protocol' });
          buffered = buffered.subarray(2);
          stage = 'reply';
          connect();
          continue;
        }
        if (buffered.length < 2) return;
        if (buffered[0] !== VERSION) return finish({ ok: false, why: 'protocol' });
        if (buffered[1] !== 0) return finish({ ok: false, why: 'reply', code: buffered[1]! });
        const length = replyLength(buffered);
        if (length === undefined) return buffered.length < 5 ? undefined : finish({ ok: false, why: 'protocol' });
        if (buffered.length < length) return;
        const rest = buffered.subarray(length);
        finish({ ok: true });
        if (rest.length > 0) socket.unshift(Buffer.from(rest));
        return;
      }
    };
    if (signal?.aborted) return resolve({ ok: false, why: 'aborted' });
    const timer = setTimeout(() => finish({ ok: false, why: 'timeout' }), timeoutMs);
    timer.unref();
    socket.on('data', onData);
    socket.once('end', onClosed);
    socket.once('close', onClosed);
    socket.once('error', onClosed);
    signal?.addEventListener('abort', onAbort, { once: true });
    // With credentials both methods are offered: Tor picks username/password (and isolates by it),
    // a plain SOCKS server may pick no authentication.
    socket.write(Buffer.from(credentials ? [VERSION, 2, NO_AUTH, USERNAME_PASSWORD] : [VERSION, 1, NO_AUTH]));
  });
}

function authRequest(username: string, password: string): Buffer {
  const user = Buffer.from(username);
  const pass = Buffer.from(password);
  return Buffer.concat([Buffer.from([1, user.length]), user, Buffer.from([pass.length]), pass]);
}

function connectRequest({ host, port }: Socks5Destination): Buffer {
  const portBytes = Buffer.from([port >> 8, port & 0xff]);
  if (net.isIPv4(host)) return Buffer.concat([Buffer.from([VERSION, 1, 0, 1, ...host.split('.').map(Number)]), portBytes]);
  if (net.isIPv6(host)) return Buffer.concat([Buffer.from([VERSION, 1, 0, 4]), ipv6Bytes(host), portBytes]);
  const name = Buffer.from(host, 'ascii');
  return Buffer.concat([Buffer.from([VERSION, 1, 0, 3, name.length]), name, portBytes]);
}

/** Length of a successful reply (header, bound address, port), or undefined while unknown or invalid. */
function replyLength(reply: Buffer): number | undefined {
  if (reply.length < 5) return undefined;
  switch (reply[3]) {
    case 1:
      return 4 + 4 + 2;
    case 3:
      return 5 + reply[4]! + 2;
    case 4:
      return 4 + 16 + 2;
    default:
      return undefined;
  }
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const words = (part: string): number[] => (part === '' ? [] : part.split(':').map((w) => parseInt(w, 16)));
  const front = words(head);
  const back = address.includes('::') ? words(tail) : [];
  const all = [...front, ...Array<number>(8 - front.length - back.length).fill(0), ...back];
  const out = Buffer.alloc(16);
  all.forEach((word, i) => out.writeUInt16BE(word, i * 2));
  return out;
}
