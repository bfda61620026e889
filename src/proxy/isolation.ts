import { createHmac, randomBytes } from 'node:crypto';

/** How connections share Tor circuits: each its own (the default), one per domain, or all one. */
export type Isolation = 'per-connection' | 'per-domain' | 'none';

const PREFIX = randomBytes(9).toString('base64url');
let count = 0;

/** Distinct per call (all Tor needs to give each connection its own circuit); no random bytes per connection. */
export function newIsolationKey(): string {
  count = (count + 1) % Number.MAX_SAFE_INTEGER;
  return `${PREFIX}.${count.toString(36)}`;
}

/**
 * The SOCKS password the daemon gives Tor for a connection (Tor's IsolateSOCKSAuth gives each
 * distinct one its own circuit). Keys are keyed hashes under a per-process secret, so what a
 * user typed never reaches Tor or the log.
 */
export class IsolationKeys {
  readonly #secret = randomBytes(32);
  readonly #mode: Isolation;

  constructor(mode: Isolation) {
    this.#mode = mode;
  }

  /** `domain` is the normalised name: however a client spells it, one domain is one key. */
  forDomain(domain: string): string | undefined {
    switch (this.#mode) {
      case 'per-connection':
        return newIsolationKey();
      case 'per-domain':
        return this.#keyed(domain);
      case 'none':
        return undefined;
    }
  }

  /** A SOCKS client's own credentials choose its circuit, as with Tor itself; the pair is encoded unambiguously. */
  forCredentials(username: string, password: string): string {
    return this.#keyed(JSON.stringify([username, password]));
  }

  #keyed(text: string): string {
    return createHmac('sha256', this.#secret).update(text).digest('base64url').slice(0, 16);
  }
}
