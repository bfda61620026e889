import type { XmlLimits } from '../policy/xml-events.js';

/** TLS bytes a client may send ahead of the server's `<proceed/>` (held, never sent early). */
export const MAX_HELD_TLS_BYTES = 32 * 1024;

/**
 * What one negotiating connection can hold beyond its byte buffers, at worst: both XML readers
 * at their bounds (elements, text, names), the policy state, two sockets. Measured, with a
 * margin, by test/adversarial/memory-flood.ts; the benchmark reports the figure.
 */
export const NEGOTIATION_STATE_BYTES = 64 * 1024;

/**
 * The most one negotiating connection can hold: its state, the bytes a SOCKS client may send
 * while Tor connects (the pre-TLS budget), and the TLS it may send ahead of `<proceed/>`.
 */
export function negotiationWorstBytes(limits: XmlLimits): number {
  return NEGOTIATION_STATE_BYTES + limits.maxBytes + MAX_HELD_TLS_BYTES;
}

/** How many connections may negotiate at once within `memoryBytes`: past it, new ones are refused. */
export function negotiationSlots(memoryBytes: number, limits: XmlLimits): number {
  return Math.max(1, Math.floor(memoryBytes / negotiationWorstBytes(limits)));
}
