const CHANGE_CIPHER_SPEC = 20;
const ALERT = 21;
const HANDSHAKE = 22;
const APPLICATION_DATA = 23;
const HEADER_LENGTH = 5;
/** RFC 5246 §6.2.3: a TLSCiphertext fragment is at most 2^14 + 2048 bytes. */
export const MAX_RECORD_LENGTH = 2 ** 14 + 2048;
/** RFC 8446 §5.1: a plaintext record (a hello is sent in plaintext) holds at most 2^14 bytes. */
const MAX_PLAINTEXT_LENGTH = 2 ** 14;
/** Whitespace allowed between the last XML element and the first TLS byte (RFC 6120 §11.7), however it is chunked. */
export const MAX_WHITESPACE_BEFORE_TLS = 1024;

/** One walker per direction, carried from the negotiation into the relay. */
export interface RelayWalkers {
  readonly client: TlsRecordWalker;
  readonly server: TlsRecordWalker;
}

/** Which side's bytes a walker reads: the client's first message is a ClientHello, the server's a ServerHello. */
export type TlsRole = 'client' | 'server';

/** RFC 8446 §4: handshake type, and the smallest body each hello can have (version, random, session id, suites, compression). */
const HELLO = {
  client: { type: 1, name: 'ClientHello', minLength: 2 + 32 + 1 + 2 + 2 + 1 + 1 },
  server: { type: 2, name: 'ServerHello', minLength: 2 + 32 + 1 + 2 + 1 },
} as const;
/** The hello's handshake header (type, 24-bit length) and its legacy_version. */
const HELLO_HEAD = 6;

export interface TlsWalkerOptions {
  /** After STARTTLS, whitespace may still come before the first record (dropped, bounded); never for direct TLS. */
  readonly afterXml?: boolean;
}

/**
 * Walks one direction's TLS records (RFC 8446 §5.1) without touching record bodies, except the
 * first six bytes of the first one: per-record work, not per-byte, so the relay stays close to a
 * plain pipe. The first record must be a handshake record that begins with this side's hello (a
 * ClientHello, or a ServerHello / HelloRetryRequest) whose length fits, so a record header
 * followed by plaintext is refused. `check` returns a description of the first violation.
 */
export class TlsRecordWalker {
  readonly #hello: (typeof HELLO)[TlsRole];
  readonly #afterXml: boolean;
  #whitespaceLeft = MAX_WHITESPACE_BEFORE_TLS;
  #bodyLeft = 0;
  /** A record header split across chunks, byte by byte (no Buffer per direction). */
  #h0 = 0;
  #h1 = 0;
  #h2 = 0;
  #h3 = 0;
  #headerFill = 0;
  #records = 0;
  #firstLength = 0;
  /** The first record's first bytes, while they are being read. */
  #helloHead = 0;
  #helloFill = 0;
  #helloVersion = 0;
  #leading = 0;
  #failed: string | undefined;
  #failedOnHello = false;

  constructor(role: TlsRole, options: TlsWalkerOptions = {}) {
    this.#hello = HELLO[role];
    this.#afterXml = options.afterXml === true;
  }

  get records(): number {
    return this.#records;
  }

  /** True when the bytes seen so far end exactly at a record boundary. */
  get atBoundary(): boolean {
    return this.#bodyLeft === 0 && this.#headerFill === 0;
  }

  /** True when the violation found was in the first record's hello (not in the framing). */
  get failedOnHello(): boolean {
    return this.#failedOnHello;
  }

  /** Whitespace at the start of the last chunk checked, before the first TLS byte: the caller drops it. */
  get leading(): number {
    return this.#leading;
  }

  check(chunk: Buffer): string | undefined {
    if (this.#failed) return this.#failed;
    const length = chunk.length;
    let offset = 0;
    this.#leading = 0;
    if (this.#afterXml && this.#records === 0 && this.#headerFill === 0) {
      while (offset < length && isXmlWhitespace(chunk[offset]!)) offset++;
      this.#leading = offset;
      if (offset > this.#whitespaceLeft) return (this.#failed = `more than ${MAX_WHITESPACE_BEFORE_TLS} bytes of whitespace before TLS`);
      this.#whitespaceLeft -= offset;
    }
    while (offset < length) {
      if (this.#helloFill < HELLO_HEAD && this.#records === 1) {
        const problem = this.#helloByte(chunk[offset++]!);
        if (problem) {
          this.#failedOnHello = true;
          return (this.#failed = problem);
        }
        continue;
      }
      if (this.#bodyLeft > 0) {
        const take = Math.min(this.#bodyLeft, length - offset);
        this.#bodyLeft -= take;
        offset += take;
        continue;
      }
      if (this.#headerFill === 0 && length - offset >= HEADER_LENGTH) {
        const problem = this.#record(chunk[offset]!, chunk[offset + 1]!, chunk[offset + 2]!, chunk.readUInt16BE(offset + 3));
        if (problem) return (this.#failed = problem);
        offset += HEADER_LENGTH;
        continue;
      }
      const byte = chunk[offset++]!;
      switch (this.#headerFill++) {
        case 0:
          this.#h0 = byte;
          break;
        case 1:
          this.#h1 = byte;
          break;
        case 2:
          this.#h2 = byte;
          break;
        case 3:
          this.#h3 = byte;
          break;
        default: {
          this.#headerFill = 0;
          const problem = this.#record(this.#h0, this.#h1, this.#h2, (this.#h3 << 8) | byte);
          if (problem) return (this.#failed = problem);
          continue;
        }
      }
      const problem = this.#partialHeader();
      if (problem) return (this.#failed = problem);
    }
    return undefined;
  }

  /** Checks a header as soon as its first bytes are in, so plaintext is refused without waiting for 5 bytes. */
  #partialHeader(): string | undefined {
    const typeProblem = this.#typeProblem(this.#h0);
    if (typeProblem) return typeProblem;
    if (this.#headerFill >= 2 && this.#h1 !== 3) return describe(this.#h0, this.#h1);
    return undefined;
  }

  #typeProblem(type: number): string | undefined {
    if (this.#records === 0 && type !== HANDSHAKE) {
      return type === ALERT
        ? 'a TLS alert came where the TLS handshake should start'
        : `the first bytes are not a TLS handshake (${looksLikeText(type) ? 'they look like plaintext' : `record type ${type}`})`;
    }
    if (type !== CHANGE_CIPHER_SPEC && type !== ALERT && type !== HANDSHAKE && type !== APPLICATION_DATA) {
      return `bytes that are not a TLS record (${looksLikeText(type) ? 'they look like plaintext' : `record type ${type}`})`;
    }
    return undefined;
  }

  #record(type: number, major: number, minor: number, length: number): string | undefined {
    const typeProblem = this.#typeProblem(type);
    if (typeProblem) return typeProblem;
    if (major !== 3 || minor > 4) return describe(type, major);
    if (length > MAX_RECORD_LENGTH) return `a TLS record of ${length} bytes, more than TLS allows`;
    if (length === 0 && type !== APPLICATION_DATA) return 'an empty TLS record where TLS forbids one';
    if (this.#records === 0) {
      if (length < HELLO_HEAD) {
        this.#failedOnHello = true;
        return `the first TLS record (${length} bytes) is too short to hold a ${this.#hello.name}`;
      }
      this.#firstLength = length;
      this.#bodyLeft = length - HELLO_HEAD;
    } else {
      this.#bodyLeft = length;
    }
    this.#records++;
    return undefined;
  }

  /** One of the first record's first six bytes: the hello's type, its 24-bit length, its legacy_version (RFC 8446 §4.1.2). */
  #helloByte(byte: number): string | undefined {
    const at = this.#helloFill++;
    const hello = this.#hello;
    if (at === 0) {
      if (byte === hello.type) return undefined;
      return `the first TLS message is not a ${hello.name} (${looksLikeText(byte) ? 'it looks like plaintext' : `handshake type ${byte}`})`;
    }
    if (at <= 3) {
      this.#helloHead = (this.#helloHead << 8) | byte;
      if (at < 3) return undefined;
      const length = this.#helloHead;
      // A hello is split across records only when it fills a whole one (RFC 8446 §5.1).
      const fits = length + 4 <= this.#firstLength || this.#firstLength === MAX_PLAINTEXT_LENGTH;
      if (length < hello.minLength || !fits) {
        return `the ${hello.name} claims ${length} bytes, which cannot be a ${hello.name} in a record of ${this.#firstLength} bytes`;
      }
      return undefined;
    }
    if (at === 4) {
      this.#helloVersion = byte;
      return undefined;
    }
    if (this.#helloVersion !== 3 || byte > 4) {
      return `the ${hello.name} has no TLS version (${looksLikeText(this.#helloVersion) || looksLikeText(byte) ? 'it looks like plaintext' : `bytes ${this.#helloVersion} ${byte}`})`;
    }
    return undefined;
  }
}

function describe(type: number, major: number): string {
  return `bytes that are not a TLS record (type ${type}, version byte ${major}${looksLikeText(major) ? ': they look like plaintext' : ''})`;
}

function looksLikeText(byte: number): boolean {
  return byte === 0x3c || byte === 0x20 || byte === 0x0a || (byte >= 0x41 && byte <= 0x7a);
}

/** RFC 6120 §11.7 allows whitespace between elements; none of it is TLS. */
function isXmlWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}
