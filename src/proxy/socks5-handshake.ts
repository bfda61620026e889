import { isUtf8 } from 'node:buffer';
import { SOCKS_REPLY } from '../policy/refusals.js';

export interface Socks5Request {
  readonly host: string;
  readonly port: number;
  readonly addressType: 'domain' | 'ipv4' | 'ipv6';
  /** RFC 1929 credentials when the client sent them: only ever used as a Tor isolation key, never logged. */
  readonly credentials?: { readonly username: string; readonly password: string };
}


export function socksReply(code: number): Buffer {
  return Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
}

export type HandshakeStep =
  | { readonly type: 'need-more'; readonly write?: Buffer }
  | { readonly type: 'request'; readonly request: Socks5Request; readonly rest: Buffer; readonly write?: Buffer }
  | { readonly type: 'fail'; readonly reason: string; readonly write?: Buffer };

const NO_AUTH = 0x00;
const USERNAME_PASSWORD = 0x02;
const NO_ACCEPTABLE_METHOD = 0xff;
const CONNECT = 0x01;

/**
 * The server side of a SOCKS5 handshake (RFC 1928, RFC 1929), fed bytes as they come.
 * Bounded: no message here is longer than 515 bytes, so nothing is buffered beyond that.
 */
export class Socks5Handshake {
  #buffer: Buffer = Buffer.alloc(0);
  #stage: 'greeting' | 'auth' | 'request' | 'done' = 'greeting';
  #credentials: Socks5Request['credentials'];

  /** True once the method is agreed: a SOCKS reply is then what the client expects. */
  get awaitingReply(): boolean {
    return this.#stage === 'request' || this.#stage === 'done';
  }

  feed(chunk: Buffer): HandshakeStep {
    if (this.#stage === 'done') return { type: 'fail', reason: 'handshake already finished' };
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const writes: Buffer[] = [];
    for (;;) {
      const step = this.#advance();
      if (step.write) writes.push(step.write);
      if (step.type !== 'progress') {
        const write = writes.length > 0 ? Buffer.concat(writes) : undefined;
        if (step.type === 'need-more') return { type: 'need-more', ...(write ? { write } : {}) };
        if (step.type === 'fail') {
          this.#stage = 'done';
          return { type: 'fail', reason: step.reason, ...(write ? { write } : {}) };
        }
        return { type: 'request', request: step.request, rest: step.rest, ...(write ? { write } : {}) };
      }
    }
  }

  #advance():
    | { type: 'progress'; write?: Buffer }
    | { type: 'need-more'; write?: undefined }
    | { type: 'fail'; reason: string; write?: Buffer }
    | { type: 'request'; request: Socks5Request; rest: Buffer; write?: undefined } {
    const b = this.#buffer;
    switch (this.#stage) {
      case 'greeting': {
        if (b.length < 2) return { type: 'need-more' };
        if (b[0] !== 5) return { type: 'fail', reason: b[0] === 4 ? 'SOCKS4 is not supported' : 'not a SOCKS5 greeting' };
        const count = b[1]!;
        if (b.length < 2 + count) return { type: 'need-more' };
        const methods = b.subarray(2, 2 + count);
        this.#buffer = b.subarray(2 + count);
        if (methods.includes(USERNAME_PASSWORD)) {
          this.#stage = 'auth';
          return { type: 'progress', write: Buffer.from([5, USERNAME_PASSWORD]) };
        }
        if (methods.includes(NO_AUTH)) {
          this.#stage = 'request';
          return { type: 'progress', write: Buffer.from([5, NO_AUTH]) };
        }
        return { type: 'fail', reason: 'no acceptable authentication method', write: Buffer.from([5, NO_ACCEPTABLE_METHOD]) };
      }
      case 'auth': {
        if (b.length < 2) return { type: 'need-more' };
        if (b[0] !== 1) return { type: 'fail', reason: 'bad username/password sub-negotiation', write: Buffer.from([1, 1]) };
        const ulen = b[1]!;
        if (b.length < 3 + ulen) return { type: 'need-more' };
        const plen = b[2 + ulen]!;
        if (b.length < 3 + ulen + plen) return { type: 'need-more' };
        this.#credentials = {
          username: b.subarray(2, 2 + ulen).toString('latin1'),
          password: b.subarray(3 + ulen, 3 + ulen + plen).toString('latin1'),
        };
        this.#buffer = b.subarray(3 + ulen + plen);
        this.#stage = 'request';
        return { type: 'progress', write: Buffer.from([1, 0]) };
      }
      case 'request': {
        if (b.length < 5) return { type: 'need-more' };
        if (b[0] !== 5) return { type: 'fail', reason: 'not a SOCKS5 request', write: socksReply(SOCKS_REPLY.generalFailure) };
        if (b[1] !== CONNECT) {
          return { type: 'fail', reason: `SOCKS command ${b[1]} (only CONNECT is supported)`, write: socksReply(SOCKS_REPLY.commandNotSupported) };
        }
        const atyp = b[3];
        let host: string;
        let addressType: Socks5Request['addressType'];
        let end: number;
        if (atyp === 1) {
          end = 4 + 4;
          if (b.length < end + 2) return { type: 'need-more' };
          host = [...b.subarray(4, 8)].join('.');
          addressType = 'ipv4';
        } else if (atyp === 3) {
          const len = b[4]!;
          end = 5 + len;
          if (b.length < end + 2) return { type: 'need-more' };
          const name = b.subarray(5, end);
          // RFC 1928 leaves the encoding open; clients send UTF-8. Anything else is refused, never guessed.
          if (!isUtf8(name)) return { type: 'fail', reason: 'the destination name is not valid UTF-8', write: socksReply(SOCKS_REPLY.notAllowed) };
          host = name.toString('utf8');
          addressType = 'domain';
        } else if (atyp === 4) {
          end = 4 + 16;
          if (b.length < end + 2) return { type: 'need-more' };
          const words = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(4 + i * 2).toString(16));
          // The URL parser writes an IPv6 address in its canonical, compressed form (`::1`), as a map would.
          host = new URL(`http://[${words.join(':')}]/`).hostname.slice(1, -1);
          addressType = 'ipv6';
        } else {
          return { type: 'fail', reason: `address type ${atyp}`, write: socksReply(SOCKS_REPLY.addressTypeNotSupported) };
        }
        const port = b.readUInt16BE(end);
        const rest = Buffer.from(b.subarray(end + 2));
        this.#buffer = Buffer.alloc(0);
        this.#stage = 'done';
        return { type: 'request', request: { host, port, addressType, ...(this.#credentials ? { credentials: this.#credentials } : {}) }, rest };
      }
      case 'done':
        return { type: 'fail', reason: 'handshake already finished' };
    }
  }
}
