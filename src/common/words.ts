/** "1 second", "20 seconds": every duration a user reads. */
export function seconds(n: number): string {
  return n === 1 ? '1 second' : `${n} seconds`;
}

/** Whole seconds from milliseconds, for the words above. */
export function wholeSeconds(ms: number): number {
  return Math.round(ms / 1000);
}

const ERRNO_WORDS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOENT: 'no such socket',
  EACCES: 'permission denied',
  EADDRINUSE: 'the address is in use (is another copy running?)',
  EADDRNOTAVAIL: 'no such local address',
  EMFILE: 'out of file descriptors',
  ENFILE: 'out of file descriptors',
  ETIMEDOUT: 'timed out',
  EPIPE: 'the other end closed',
};

/** A system error code in words (the code itself when it has none here). */
export function errnoWords(code: string | undefined): string {
  if (code === undefined) return 'error';
  return ERRNO_WORDS[code] ?? code;
}
