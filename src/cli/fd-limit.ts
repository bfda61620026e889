import { readFileSync } from 'node:fs';

/** Descriptors kept for listeners, the control socket, logs and the Tor probe. */
const RESERVED = 64;
const FALLBACK = 4096;

/**
 * The default --max-connections: each connection holds two descriptors (client and Tor), so
 * half of what the open-file limit leaves; past it clients get a clear refusal instead of EMFILE.
 * Linux only (/proc/self/limits); elsewhere a fixed fallback.
 */
export function defaultMaxConnections(limits = readLimits()): number {
  const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits ?? '')?.[1];
  if (soft === undefined || soft === 'unlimited') return FALLBACK;
  return Math.max(1, Math.floor((Number(soft) - RESERVED) / 2));
}

function readLimits(): string | undefined {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return undefined;
  }
}
