/**
 * What the bench's client and server say to each other: the XMPP strings before TLS, TLS
 * record framing for records mode, and a reader that hands out what a stream received.
 */
import type { Duplex } from 'node:stream';

export const TLS_DOMAIN = 'tls.bench.test';
export const RECORDS_DOMAIN = 'records.bench.test';
export type Mode = 'tls' | 'records';
export const domainFor = (mode: Mode): string => (mode === 'tls' ? TLS_DOMAIN : RECORDS_DOMAIN);

export const clientHeader = (domain: string): string =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}' version='1.0' xml:lang='en'>`;
export const serverHeader = (domain: string, id: number): string =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='${domain}' id='bench-${id}' version='1.0' xml:lang='en'>`;
export const FEATURES = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>";
export const STARTTLS = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
export const PROCEED = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

export const HANDSHAKE = 22;
export const APPLICATION_DATA = 23;
/** The largest plaintext record TLS allows, as TLS stacks send in bulk. */
export const RECORD_BODY = 16_384;
export const RECORD_SIZE = RECORD_BODY + 5;

export function record(type: number, body: Buffer | string): Buffer {
  const data = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
  const header = Buffer.from([type, 3, 3, data.length >> 8, data.length & 0xff]);
  return Buffer.concat([header, data]);
}

/**
 * Records mode's first record each way: a handshake record that opens like a ClientHello or a
 * ServerHello (type, 24-bit length, version 3.3), as the daemon checks, carrying `text` padded
 * to a hello's smallest size.
 */
export function helloRecord(role: 'client' | 'server', text: string): Buffer {
  const body = Buffer.from(text.padEnd(40, ' '), 'latin1');
  const hello = Buffer.concat([Buffer.from([role === 'client' ? 1 : 2, 0, (body.length + 2) >> 8, (body.length + 2) & 0xff, 3, 3]), body]);
  return record(HANDSHAKE, hello);
}

/** The text a records-mode hello carries. */
export function helloText(first: Buffer): string {
  return first.toString('latin1', 5 + 6).trim();
}

/** `count` full application-data records back to back (valid TLS framing, no cryptography). */
export function recordChunk(count: number): Buffer {
  const one = record(APPLICATION_DATA, Buffer.alloc(RECORD_BODY, 0x5a));
  return Buffer.concat(Array.from({ length: count }, () => one));
}

/** End index of the first whole record in `b`, or -1. */
export function recordEnd(b: Buffer): number {
  if (b.length < 5) return -1;
  const end = 5 + b.readUInt16BE(3);
  return b.length >= end ? end : -1;
}

/** End index just past `marker` and the `close` that follows it, or -1. */
export function endAfter(marker: string, close = '>'): (b: Buffer) => number {
  return (b) => {
    const at = b.indexOf(marker, 0, 'latin1');
    if (at < 0) return -1;
    const end = b.indexOf(close, at + marker.length, 'latin1');
    return end < 0 ? -1 : end + close.length;
  };
}

interface Waiter {
  readonly test: (buffered: Buffer) => number;
  readonly resolve: (taken: Buffer) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout | undefined;
}

/**
 * One 'data' listener on a stream that serves, in turn: `take` (a piece whose end a test
 * finds), `count` (bytes until a total), or `forward` (every chunk to a function). Waits are
 * bounded; a close or error before a wait is served rejects it with what was received.
 */
export class StreamReader {
  #buffered: Buffer = Buffer.alloc(0);
  #waiter: Waiter | undefined;
  #counting: { left: number; resolve: () => void; reject: (error: Error) => void } | undefined;
  #forward: ((chunk: Buffer) => void) | undefined;
  #failure: Error | undefined;
  readonly #stream: Duplex;

  constructor(stream: Duplex, initial?: Buffer) {
    this.#stream = stream;
    if (initial && initial.length > 0) this.#buffered = initial;
    stream.on('data', this.#onData);
    stream.on('end', this.#onEnd);
    stream.on('close', this.#onEnd);
    stream.on('error', this.#onError);
  }

  take(test: (buffered: Buffer) => number, timeoutMs = 10_000): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      const end = test(this.#buffered);
      if (end >= 0) return resolve(this.#cut(end));
      const timer = timeoutMs > 0 ? setTimeout(() => this.#fail(new Error(`timed out after ${timeoutMs} ms; received: ${this.#seen()}`)), timeoutMs) : undefined;
      this.#waiter = { test, resolve, reject, timer };
    });
  }

  takeBytes(n: number, timeoutMs?: number): Promise<Buffer> {
    return this.take((b) => (b.length >= n ? n : -1), timeoutMs);
  }

  /** Resolves once `total` more bytes arrived (what is already buffered counts). */
  count(total: number): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#failure) return reject(this.#failure);
      const already = this.#buffered.length;
      this.#buffered = Buffer.alloc(0);
      if (already >= total) return resolve();
      this.#counting = { left: total - already, resolve, reject };
    });
  }

  /** Every chunk from now on goes to `to` (what is buffered first). */
  forward(to: (chunk: Buffer) => void): void {
    this.#forward = to;
    if (this.#buffered.length > 0) to(this.#cut(this.#buffered.length));
  }

  /** Stops listening; returns what was received and not taken. */
  detach(): Buffer {
    this.#stream.removeListener('data', this.#onData);
    this.#stream.removeListener('end', this.#onEnd);
    this.#stream.removeListener('close', this.#onEnd);
    this.#stream.removeListener('error', this.#onError);
    const rest = this.#buffered;
    this.#buffered = Buffer.alloc(0);
    return rest;
  }

  #cut(end: number): Buffer {
    const taken = this.#buffered.subarray(0, end);
    this.#buffered = this.#buffered.subarray(end);
    return taken;
  }

  #seen(): string {
    return JSON.stringify(this.#buffered.toString('latin1', 0, 1000));
  }

  #onData = (chunk: Buffer): void => {
    if (this.#forward) return this.#forward(chunk);
    const counting = this.#counting;
    if (counting) {
      counting.left -= chunk.length;
      if (counting.left <= 0) {
        this.#counting = undefined;
        counting.resolve();
      }
      return;
    }
    this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk]);
    const waiter = this.#waiter;
    if (!waiter) return;
    const end = waiter.test(this.#buffered);
    if (end < 0) return;
    this.#waiter = undefined;
    clearTimeout(waiter.timer);
    waiter.resolve(this.#cut(end));
  };

  #onEnd = (): void => {
    this.#fail(new Error(`closed; received: ${this.#seen()}`));
  };

  #onError = (error: Error): void => {
    this.#fail(new Error(`${(error as NodeJS.ErrnoException).code ?? error.message}; received: ${this.#seen()}`));
  };

  #fail(error: Error): void {
    this.#failure ??= error;
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      clearTimeout(waiter.timer);
      waiter.reject(this.#failure);
    }
    const counting = this.#counting;
    if (counting) {
      this.#counting = undefined;
      counting.reject(this.#failure);
    }
  }
}

/**
 * Writes `total` bytes of `chunk` (repeated, the last one cut) with backpressure; resolves once
 * the last piece is handed to the kernel.
 */
export function sendBulk(stream: Duplex, total: number, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let left = total;
    const onError = (error: Error): void => reject(error);
    stream.once('error', onError);
    const pump = (): void => {
      while (left > 0) {
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= piece.length;
        if (left === 0) {
          stream.write(piece, (error) => {
            stream.removeListener('error', onError);
            if (error) reject(error);
            else resolve();
          });
          return;
        }
        if (!stream.write(piece)) {
          stream.once('drain', pump);
          return;
        }
      }
      stream.removeListener('error', onError);
      resolve();
    };
    pump();
  });
}
