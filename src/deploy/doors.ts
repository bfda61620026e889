import { isLoopback, parseEndpoint } from '../common/endpoint.js';
import { UsageError } from '../common/errors.js';

/**
 * The daemon's two front doors as a client sees them: the SOCKS5 door (the client asks for its
 * server by name; the certificate is checked against the JID's domain) and the connect-server
 * door (the client connects to 127.0.0.1 and names its server in the stream header).
 */
export type DoorKind = 'socks' | 'connect-server';

export const DOOR_KINDS: readonly DoorKind[] = ['socks', 'connect-server'];

/** Where the shipped configurations (systemd, Tails) open the doors. */
export const DEFAULT_DOORS = {
  socks: '127.0.0.1:9055',
  'connect-server': '127.0.0.1:5222',
} as const satisfies Record<DoorKind, string>;

export interface DoorAddress {
  readonly kind: DoorKind;
  readonly host: string;
  readonly port: number;
}

export function describeDoor(door: DoorAddress): string {
  return `the ${door.kind === 'socks' ? 'SOCKS' : 'connect-server'} door ${door.host}:${door.port}`;
}

/**
 * HOST:PORT of a door as a client must be told it: a loopback IP address (libpurple resolves
 * no proxy name with proxy type "tor", and the daemon listens on loopback only) and a real port.
 */
export function parseDoorAddress(kind: DoorKind, text: string, flag: string): DoorAddress {
  const endpoint = parseEndpoint(text, flag);
  if (endpoint.kind !== 'tcp') throw new UsageError(`${flag}: expected HOST:PORT`);
  if (!isLoopback(endpoint.host)) throw new UsageError(`${flag} ${text}: the daemon's doors are on loopback (127.0.0.1)`);
  return { kind, host: endpoint.host, port: endpoint.port };
}
