const CHANGE_CIPHER_SPEC = 20;
const ALERT = 21;
const HANDSHAKE = 22;
const APPLICATION_DATA = 23;
const HEADER_LENGTH = 5;
/** RFC 5246 §6.2.3: a TLSCiphertext fragment is at most 2^14 + 2048 bytes. */
export const MAX_RECORD_LENGTH = 2 ** 14 + 2048;

/**
 * Walks the 5-byte TLS record headers of one direction (RFC 8446 §5.1) without touching
 * record bodies: per-record work, not per-byte, so the relay stays close to a plain pipe.
 * `check` returns a description of the first framing violation, or undefined.
 */
export class TlsRecordWalker {
  #bodyLeft = 0;
  /** A record header split across chunks, byte by byte (no Buffer per direction). */
  #h0 = 0;
  #h1 = 0;
  #h2 = 0;
  #h3 = 0;
  #headerFill = 0;
  #records = 0;
  #failed: string | undefined;

  get records(): number {
    return this.#records;
  }

  /** True when the bytes seen so far end exactly at a record boundary. */
  get atBoundary(): boolean {
    return this.#bodyLeft === 0 && this.#headerFill === 0;
  }

  check(chunk: Buffer): string | undefined {
    if (this.#failed) return this.#failed;
    const length = chunk.length;
    let offset = 0;
    while (offset < length) {
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
    this.#records++;
    this.#bodyLeft = length;
    return undefined;
  }
}

function describe(type: number, major: number): string {
  return `bytes that are not a TLS record (type ${type}, version byte ${major}${looksLikeText(major) ? ': they look like plaintext' : ''})`;
}

function looksLikeText(byte: number): boolean {
  return byte === 0x3c || byte === 0x20 || byte === 0x0a || (byte >= 0x41 && byte <= 0x7a);
}
