import net from 'node:net';
import tls from 'node:tls';

/** Reads from `socket` until `done(received)` holds; rejects if the socket closes first. */
export function readUntil(socket: net.Socket, done: (received: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    const onData = (chunk: Buffer): void => {
      received += chunk.toString('utf8');
      if (done(received)) {
        cleanup();
        resolve(received);
      }
    };
    const onClose = (): void => {
      cleanup();
      reject(Object.assign(new Error(`closed before the expected data; received: ${received}`), { received }));
    };
    const cleanup = (): void => {
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/** Everything the socket receives until it closes. */
export function readToClose(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

export async function connect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  const socket = net.connect({ port, host });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

export function clientHeader(domain: string, extra = ''): string {
  return `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}' version='1.0'${extra}>`;
}

export const STARTTLS = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

/**
 * A client doing STARTTLS by the book through `port`: header, wait for features with
 * <starttls/>, send it, wait for <proceed/>, then TLS verified against `domain` with `ca`.
 */
export async function starttlsClient(port: number, domain: string, ca: string): Promise<{ secure: tls.TLSSocket; beforeTls: string }> {
  const socket = await connect(port);
  socket.write(clientHeader(domain, " from='alice@" + domain + "'"));
  let beforeTls = await readUntil(socket, (r) => r.includes('</stream:features>'));
  socket.write(STARTTLS);
  beforeTls += await readUntil(socket, (r) => r.includes('<proceed'));
  const secure = tls.connect({ socket, servername: domain, ca });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', resolve);
    secure.once('error', reject);
  });
  return { secure, beforeTls };
}
