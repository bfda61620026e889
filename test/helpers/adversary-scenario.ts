import type { Test } from 'tap';
import type { Arena, ArenaOptions } from './adversary-arena.js';
import { WAIT_MS, type Peer } from './adversary-peers.js';

export type ScenarioGroup = 'server' | 'client' | 'fault' | 'resource' | 'names' | 'tls-start' | 'memory';

/** One attack: its own arena (daemon, Tor, upstreams), a run that asserts both sides byte for byte. */
export interface Scenario {
  readonly group: ScenarioGroup;
  readonly name: string;
  readonly arena?: ArenaOptions;
  run(t: Test, arena: Arena): Promise<void>;
}

/** The peer was closed by the daemon (FIN or RST), within the wait bound. */
export async function expectClosed(t: Test, peer: Peer, label: string): Promise<void> {
  const info = await peer.waitForClose().catch((error: Error) => error);
  t.ok(!(info instanceof Error), `${label}: the connection was closed`, info instanceof Error ? { error: info.message } : {});
}

/** Walks TLS record headers: true when `bytes` is a whole number of well-framed records starting with a handshake. */
export function isTlsRecords(bytes: Buffer): boolean {
  let offset = 0;
  let first = true;
  while (offset < bytes.length) {
    if (bytes.length - offset < 5) return false;
    const type = bytes[offset]!;
    if (first && type !== 22) return false;
    if (type < 20 || type > 23 || bytes[offset + 1] !== 3) return false;
    offset += 5 + bytes.readUInt16BE(offset + 3);
    first = false;
  }
  return offset === bytes.length;
}

/** A TLS record header's first byte: the start of a ClientHello on the wire. */
export const TLS_HANDSHAKE_START = Buffer.from([0x16, 0x03]);

/** Byte-for-byte equality of what a peer received, reporting where the two first differ. */
export function sameText(t: Test, actual: string | undefined, expected: string, message: string): void {
  if (actual === expected) {
    t.pass(message);
    return;
  }
  const a = actual ?? '';
  let i = 0;
  while (i < a.length && i < expected.length && a[i] === expected[i]) i++;
  const from = Math.max(0, i - 60);
  t.fail(message, { differsAt: i, actualLength: a.length, expectedLength: expected.length, actual: a.slice(from, i + 300), expected: expected.slice(from, i + 300) });
}

/** Resolves once `condition` holds, checked on every turn of the event loop (no sleep); rejects after `ms`. */
export async function until(condition: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
