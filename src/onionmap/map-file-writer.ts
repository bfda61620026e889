import { DEFAULT_CLIENT_PORT, type MapEntry } from './entry.js';

/**
 * The JSON map format that parseMapJson reads: an object keyed by domain. The default client
 * port is left out so a reader never mistakes it for a confirmed fact; `origin` is ours, not the file's.
 */
export function formatMapJson(entries: readonly MapEntry[]): string {
  const out: Record<string, Record<string, unknown>> = {};
  for (const entry of entries) {
    out[entry.domain] = {
      ...(entry.onion !== undefined ? { onion: entry.onion } : {}),
      ...(entry.port !== DEFAULT_CLIENT_PORT ? { port: entry.port } : {}),
      ...(entry.directTlsPort !== undefined ? { directTlsPort: entry.directTlsPort } : {}),
      ...(entry.s2sPort !== undefined ? { s2sPort: entry.s2sPort } : {}),
      ...(entry.host !== undefined ? { host: entry.host } : {}),
      status: entry.status,
      ...(entry.note !== undefined ? { note: entry.note } : {}),
      ...(entry.source !== undefined ? { source: entry.source } : {}),
      ...(entry.pipelining !== undefined ? { pipelining: entry.pipelining } : {}),
      ...(entry.https ? { https: { ...(entry.https.hosts.length > 0 ? { hosts: entry.https.hosts } : {}), ports: entry.https.ports } } : {}),
    };
  }
  return `${JSON.stringify(out, null, 2)}\n`;
}
