import { createHash } from 'node:crypto';

export type OnionResult = { ok: true; onion: string } | { ok: false; problem: string };

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const V3_LENGTH = 56;
const V2_LENGTH = 16;
const V3_VERSION = 3;

function base32Decode(text: string): Buffer | undefined {
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const char of text) {
    const index = BASE32.indexOf(char);
    if (index < 0) return undefined;
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

export function onionChecksum(publicKey: Buffer): Buffer {
  return createHash('sha3-256')
    .update('.onion checksum')
    .update(publicKey)
    .update(Buffer.from([V3_VERSION]))
    .digest()
    .subarray(0, 2);
}

/**
 * Checks a v3 onion address in full (rend-spec-v3 §6): 56 base32 characters encoding
 * a 32-byte ed25519 key, a 2-byte SHA3-256 checksum and the version byte 3.
 * Accepts the name with or without the `.onion` suffix and returns it with the suffix, in lower case.
 */
export function validateOnion(raw: string): OnionResult {
  const lower = raw.trim().toLowerCase();
  const name = lower.endsWith('.onion') ? lower.slice(0, -'.onion'.length) : lower;
  if (name.includes('.')) return { ok: false, problem: `"${raw}" has a subdomain; give the bare onion address` };
  if (name.length === V2_LENGTH) {
    return { ok: false, problem: `"${raw}" is a v2 onion address, and v2 onions no longer work (Tor dropped them in 2021); ask the operator for a v3 address` };
  }
  if (name.length !== V3_LENGTH) {
    return { ok: false, problem: `"${raw}" is not a v3 onion address (${name.length} characters, expected ${V3_LENGTH})` };
  }
  const decoded = base32Decode(name);
  if (!decoded || decoded.length !== 35) {
    return { ok: false, problem: `"${raw}" is not a v3 onion address (not base32)` };
  }
  const publicKey = decoded.subarray(0, 32);
  if (decoded[34] !== V3_VERSION) {
    return { ok: false, problem: `"${raw}" has version byte ${decoded[34]}, expected ${V3_VERSION}` };
  }
  if (!onionChecksum(publicKey).equals(decoded.subarray(32, 34))) {
    return { ok: false, problem: `"${raw}" has a wrong checksum (a mistyped character?)` };
  }
  return { ok: true, onion: `${name}.onion` };
}

/** Builds the v3 address of an ed25519 public key (used by tests and tools). */
export function onionFromPublicKey(publicKey: Buffer): string {
  const bytes = Buffer.concat([publicKey, onionChecksum(publicKey), Buffer.from([V3_VERSION])]);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return `${out}.onion`;
}
