import net from 'node:net';
import { UsageError } from './errors.js';

export type Endpoint = { readonly kind: 'tcp'; readonly host: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string };

/**
 * Parses HOST:PORT, [IPv6]:PORT or unix:PATH (port 0, where allowed, means any free port). Hosts must be IP literals or "localhost":
 * the daemon never resolves names, not even its own listeners.
 */
export function parseEndpoint(text: string, what: string, allow: { unix?: boolean; portZero?: boolean } = {}): Endpoint {
  const allowUnix = allow.unix === true;
  if (text.startsWith('unix:')) {
    if (!allowUnix) throw new UsageError(`${what}: a Unix socket is not supported here (${text})`);
    const path = text.slice('unix:'.length);
    if (!path.startsWith('/')) throw new UsageError(`${what}: unix: needs an absolute path (${text})`);
    return { kind: 'unix', path };
  }
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  if (!match) throw new UsageError(`${what}: expected HOST:PORT${allowUnix ? ' or unix:PATH' : ''}, got "${text}"`);
  const host = match[1] ?? match[2] ?? '';
  const port = Number(match[3]);
  const lowest = allow.portZero ? 0 : 1;
  if (port < lowest || port > 65535) throw new UsageError(`${what}: port must be ${lowest}-65535, got ${match[3]}`);
  const address = host === 'localhost' ? '127.0.0.1' : host;
  if (net.isIP(address) === 0) {
    throw new UsageError(`${what}: "${host}" is not an IP address (names are never resolved; use 127.0.0.1 or ::1)`);
  }
  return { kind: 'tcp', host: address, port };
}

export function isLoopback(host: string): boolean {
  return host === '::1' || /^127\./.test(host) || host === '::ffff:127.0.0.1';
}

export function formatEndpoint(endpoint: Endpoint): string {
  if (endpoint.kind === 'unix') return `unix:${endpoint.path}`;
  return endpoint.host.includes(':') ? `[${endpoint.host}]:${endpoint.port}` : `${endpoint.host}:${endpoint.port}`;
}
