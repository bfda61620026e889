/**
 * A TLS handshake record that opens with a hello's header (RFC 8446 §4: type, 24-bit length,
 * legacy_version 3.3) and the given bytes after it: what a walker accepts as a first record,
 * written out here independently of src.
 */
export function helloRecord(role: 'client' | 'server', rest: Uint8Array | number, minor = 1): Buffer {
  const tail = typeof rest === 'number' ? Buffer.alloc(Math.max(rest, 40), 0x42) : Buffer.from(rest);
  const hello = Buffer.concat([Buffer.from([role === 'client' ? 1 : 2, 0, 0, 0, 3, 3]), tail]);
  hello.writeUIntBE(hello.length - 4, 1, 3);
  const record = Buffer.from([22, 3, minor, 0, 0]);
  record.writeUInt16BE(hello.length, 3);
  return Buffer.concat([record, hello]);
}
