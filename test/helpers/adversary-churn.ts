/**
 * Lean peers for the churn test: upstream servers that keep no history (so the test's own heap
 * stays flat), and client operations that each end in a verdict. Each operation is one
 * connection through the daemon with one fault (or none), and a deadline.
 */
import { randomBytes, randomInt } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import {
  clientHeaderIn, FEATURES_OUT, FEATURES_PLAIN_IN, FEATURES_REQUIRED_IN, PROCEED_IN, PROCEED_OUT, serverHeaderIn, STARTTLS_IN, STARTTLS_OUT,
} from './adversary-arena.js';
import { helloRecord } from './tls-hello.js';

export type UpstreamKind = 'fake-tls' | 'real-tls' | 'strip' | 'inject' | 'reset' | 'garbage';

/** An upstream that behaves as `kind`; remembers nothing but its open sockets. */
export async function startLeanUpstream(kind: UpstreamKind, pki: { key: string; cert: string }): Promise<{ port: number; open(): number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = '';
    let stage: 'header' | 'starttls' | 'tls' = 'header';
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString('latin1');
      if (stage === 'header' && buffered.includes('>')) {
        stage = 'starttls';
        if (kind === 'reset') return void socket.resetAndDestroy();
        const domain = /to='([^']+)'/.exec(buffered)?.[1] ?? 'x';
        socket.write(serverHeaderIn(domain) + (kind === 'strip' ? FEATURES_PLAIN_IN : FEATURES_REQUIRED_IN));
      }
      const at = buffered.indexOf(STARTTLS_OUT);
      if (stage !== 'starttls' || at < 0) return;
      stage = 'tls';
      socket.removeListener('data', onData);
      const rest = Buffer.from(buffered.slice(at + STARTTLS_OUT.length), 'latin1');
      buffered = '';
      if (kind === 'inject') return void socket.write(PROCEED_IN + FEATURES_PLAIN_IN);
      socket.write(PROCEED_IN);
      if (kind === 'garbage') return void socket.once('data', () => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
      if (kind === 'real-tls') {
        if (rest.length > 0) socket.unshift(rest);
        const secure = new tls.TLSSocket(socket, { isServer: true, key: pki.key, cert: pki.cert });
        secure.on('error', () => socket.destroy());
        secure.on('data', (data: Buffer) => secure.write(data));
        secure.on('end', () => secure.end());
        return;
      }
      // fake-tls: once the client's first TLS bytes came (as a real server waits for its
      // ClientHello), a ServerHello-shaped record, then the client's records echoed back.
      let helloSent = false;
      const echo = (data: Buffer): void => {
        if (!helloSent) socket.write(FAKE_SERVER_HELLO);
        helloSent = true;
        socket.write(data);
      };
      if (rest.length > 0) echo(rest);
      socket.on('data', echo);
      socket.on('end', () => socket.end());
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    open: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** What the fake upstream sends first once TLS starts: a record that opens with a ServerHello's header. */
export const FAKE_SERVER_HELLO = helloRecord('server', 40);

/** A TLS-shaped record: type, version 3.3, `size` random body bytes. */
export function fakeRecord(type: number, size: number): Buffer {
  const record = Buffer.concat([Buffer.from([type, 3, 3, 0, 0]), randomBytes(size)]);
  record.writeUInt16BE(size, 3);
  return record;
}

export type OpKind =
  | 'honest' | 'honest-pipelined' | 'real-tls' | 'reset-after-header' | 'reset-mid-relay' | 'auth' | 'garbage' | 'idle' | 'strip' | 'inject'
  | 'server-reset' | 'socks-unreachable' | 'retired' | 'fin-early' | 'server-garbage' | 'close-at-once';

/** How often each operation is drawn (weights). */
export const OP_WEIGHTS: ReadonlyArray<readonly [OpKind, number]> = [
  ['honest', 30], ['honest-pipelined', 6], ['real-tls', 2], ['reset-after-header', 7], ['reset-mid-relay', 5], ['auth', 8], ['garbage', 5],
  ['idle', 2], ['strip', 5], ['inject', 5], ['server-reset', 5], ['socks-unreachable', 5], ['retired', 3], ['fin-early', 4],
  ['server-garbage', 4], ['close-at-once', 4],
];

export function drawOp(): OpKind {
  const total = OP_WEIGHTS.reduce((n, [, w]) => n + w, 0);
  let pick = randomInt(total);
  for (const [kind, weight] of OP_WEIGHTS) {
    if (pick < weight) return kind;
    pick -= weight;
  }
  return 'honest';
}

/** Which domain each operation asks for (the churn test maps them). */
export function domainFor(kind: OpKind): string {
  switch (kind) {
    case 'real-tls':
      return 'tls.test';
    case 'strip':
      return 'strip.test';
    case 'inject':
      return 'inject.test';
    case 'server-reset':
      return 'reset.test';
    case 'server-garbage':
      return 'garbage.test';
    case 'socks-unreachable':
      return 'nowhere.test';
    case 'retired':
      return 'retired.test';
    default:
      return 'fake.test';
  }
}

/**
 * One connection through the daemon doing `kind`. Resolves with undefined when everything
 * was as the policy demands, or with what went wrong; never rejects. `relaxed` accepts any clean
 * end (for operations in flight while Tor was crashed under them).
 */
export function runOp(port: number, kind: OpKind, ca: string, deadlineMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    let received = Buffer.alloc(0);
    let verdict: string | undefined;
    let settled = false;
    const timer = setTimeout(() => {
      verdict ??= `${kind}: not closed within ${deadlineMs} ms (received ${JSON.stringify(received.toString('latin1').slice(-120))})`;
      socket.destroy();
    }, deadlineMs);
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(verdict ?? check());
    };
    socket.on('close', finish);
    socket.on('error', () => {});
    const text = (): string => received.toString('latin1');
    const expectError = (condition: string): string | undefined =>
      new RegExp(`<stream:error><${condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text [^>]*>[^<]+</text></stream:error></stream:stream>$`).test(text())
        ? undefined : `${kind}: expected a ${condition} stream error, got ${JSON.stringify(text().slice(-200))}`;
    let echoed = false;
    const check = (): string | undefined => {
      switch (kind) {
        case 'honest':
        case 'honest-pipelined':
        case 'real-tls':
          return echoed ? undefined : `${kind}: no round trip (${JSON.stringify(text().slice(0, 200))})`;
        case 'auth':
        case 'inject':
        case 'strip':
          return expectError('policy-violation');
        case 'garbage':
          return /<stream:error><[a-z-]+ xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/><text [^>]*>[^<]+<\/text><\/stream:error><\/stream:stream>$/.test(text()) ? undefined : `garbage: no stream error (${JSON.stringify(text().slice(-200))})`;
        case 'idle':
          return expectError('connection-timeout');
        case 'server-reset':
        case 'socks-unreachable':
          return expectError('remote-connection-failed');
        case 'retired':
          return expectError('host-gone');
        case 'server-garbage':
          return text().endsWith(PROCEED_OUT) ? undefined : `server-garbage: bytes after <proceed/> (${JSON.stringify(text().slice(-120))})`;
        case 'fin-early':
        case 'close-at-once':
        case 'reset-after-header':
        case 'reset-mid-relay':
          return undefined;
      }
    };
    const domain = domainFor(kind);
    socket.once('connect', () => {
      if (kind === 'close-at-once') return void socket.destroy();
      if (kind === 'idle') return;
      if (kind === 'garbage') return void socket.write(randomBytes(randomInt(1, 300)));
      socket.write(clientHeaderIn(domain, `someone@${domain}`));
      if (kind === 'fin-early') socket.end();
    });
    const hello = helloRecord('client', randomInt(50, 600));
    const payload = Buffer.concat([hello, fakeRecord(23, randomInt(1, 3000)), fakeRecord(23, randomInt(1, 3000))]);
    let stage: 'features' | 'proceed' | 'relay' | 'done' = 'features';
    let relayFrom = 0;
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      if (kind === 'reset-after-header') return void socket.resetAndDestroy();
      if (stage === 'features' && text().includes(FEATURES_OUT)) {
        stage = 'proceed';
        if (kind === 'auth') return void socket.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0someone\0secret').toString('base64')}</auth>`);
        socket.write(kind === 'honest-pipelined' ? Buffer.concat([Buffer.from(STARTTLS_IN), hello]) : STARTTLS_IN);
      }
      if (stage === 'proceed' && text().includes(PROCEED_OUT)) {
        stage = 'relay';
        relayFrom = text().indexOf(PROCEED_OUT) + PROCEED_OUT.length;
        if (kind === 'real-tls') return void startRealTls();
        if (kind === 'server-garbage') return void socket.write(hello);
        socket.write(kind === 'honest-pipelined' ? payload.subarray(hello.length) : payload);
      }
      if (stage === 'relay' && kind !== 'real-tls' && received.length - relayFrom >= payload.length / 2 && kind === 'reset-mid-relay') {
        stage = 'done';
        return void socket.resetAndDestroy();
      }
      if (stage === 'relay' && kind !== 'real-tls' && received.length - relayFrom >= FAKE_SERVER_HELLO.length + payload.length) {
        stage = 'done';
        const echo = relayFrom + FAKE_SERVER_HELLO.length;
        echoed = received.subarray(relayFrom, echo).equals(FAKE_SERVER_HELLO) && received.subarray(echo, echo + payload.length).equals(payload);
        socket.end();
      }
    };
    socket.on('data', onData);
    const startRealTls = (): void => {
      socket.removeListener('data', onData);
      const secure = tls.connect({ socket, servername: domain, ca });
      secure.on('error', () => socket.destroy());
      secure.once('secureConnect', () => {
        const ping = randomBytes(32).toString('hex');
        let got = '';
        secure.on('data', (d: Buffer) => {
          got += d.toString();
          if (got.length >= ping.length) {
            echoed = got === ping;
            secure.end();
          }
        });
        secure.write(ping);
      });
    };
  });
}
