export const STATUSES = ['active', 'unverified', 'retired', 'no-onion'] as const;
export type EntryStatus = (typeof STATUSES)[number];

export const DEFAULT_CLIENT_PORT = 5222;

/** What the daemon knows about one XMPP domain. */
export interface MapEntry {
  readonly domain: string;
  /** v3 address with `.onion`; for a retired entry it is kept for reference and never routed to. */
  readonly onion?: string;
  /** Client-to-server port (STARTTLS), at the onion or at `host`. */
  readonly port: number;
  /** XEP-0368 direct-TLS port, when the service offers one. */
  readonly directTlsPort?: number;
  /** Server-to-server port from the operators' map: kept as a fact, never used for clients. */
  readonly s2sPort?: number;
  /** Clearnet host reached through a Tor exit when there is no onion. */
  readonly host?: string;
  readonly status: EntryStatus;
  readonly note?: string;
  readonly source?: string;
  /** False for a server that refuses `<starttls/>` sent with the stream header (pipelining). */
  readonly pipelining?: boolean;
  /** The file the entry came from ("bundled" for the map shipped in the package). */
  readonly origin: string;
}
