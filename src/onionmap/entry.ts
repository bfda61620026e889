export const STATUSES = ['active', 'unverified', 'retired', 'no-onion'] as const;
export type EntryStatus = (typeof STATUSES)[number];

export const DEFAULT_CLIENT_PORT = 5222;

export const HTTPS_PORT = 443;

/**
 * An entry's HTTPS services: requests for the domain or one of `hosts`, at one of `ports`, are
 * TLS only at the SOCKS door, and go to the entry's onion when it has a usable one.
 */
export interface HttpsServices {
  /** Names besides the domain itself (e.g. the upload host), normalised. */
  readonly hosts: readonly string[];
  /** Its HTTPS ports (e.g. Prosody's 5281); 443 is HTTPS for every name anyway. */
  readonly ports: readonly number[];
}

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
  /** The entry's HTTPS services (HTTP upload, host-meta), for the SOCKS door. */
  readonly https?: HttpsServices;
  /** The file the entry came from ("bundled" for the map shipped in the package). */
  readonly origin: string;
}
