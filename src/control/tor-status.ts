import { socks5Greeting } from '../proxy/tor-probe.js';
import { formatEndpoint, type Endpoint } from '../common/endpoint.js';
import type { TorStatus } from './protocol.js';

/**
 * Whether Tor's SOCKS port answers a SOCKS5 greeting (asking it to connect nowhere). Checked only
 * when a control client asks for a snapshot, at most once per `maxAgeMs`; callers at the same
 * time share one check.
 */
export class TorProbe {
  readonly #tor: Endpoint;
  readonly #maxAgeMs: number;
  readonly #timeoutMs: number;
  #last: TorStatus | undefined;
  #running: Promise<TorStatus> | undefined;

  constructor(tor: Endpoint, { maxAgeMs = 5000, timeoutMs = 2000 } = {}) {
    this.#tor = tor;
    this.#maxAgeMs = maxAgeMs;
    this.#timeoutMs = timeoutMs;
  }

  status(now = Date.now()): Promise<TorStatus> {
    if (this.#last && now - this.#last.checkedAt < this.#maxAgeMs) return Promise.resolve(this.#last);
    this.#running ??= socks5Greeting(this.#tor, this.#timeoutMs).then((result) => {
      this.#running = undefined;
      this.#last = {
        endpoint: formatEndpoint(this.#tor),
        reachable: result.ok,
        ...(result.ok ? {} : { problem: `${result.problem}: ${result.detail}` }),
        checkedAt: Date.now(),
      };
      return this.#last;
    });
    return this.#running;
  }
}
