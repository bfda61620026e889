import type { MapEntry } from './entry.js';

/** An immutable set of entries keyed by normalised domain; later layers replace earlier ones whole. */
export class OnionMap {
  readonly #entries: ReadonlyMap<string, MapEntry>;
  readonly #byOnion: ReadonlyMap<string, MapEntry>;
  readonly #byHttpsHost: ReadonlyMap<string, MapEntry>;

  constructor(entries: Iterable<MapEntry>) {
    const byDomain = new Map<string, MapEntry>();
    for (const entry of entries) byDomain.set(entry.domain, entry);
    this.#entries = byDomain;
    const byOnion = new Map<string, MapEntry>();
    for (const entry of byDomain.values()) if (entry.onion) byOnion.set(entry.onion, entry);
    this.#byOnion = byOnion;
    const byHttpsHost = new Map<string, MapEntry>();
    for (const entry of byDomain.values()) for (const host of entry.https?.hosts ?? []) byHttpsHost.set(host, entry);
    this.#byHttpsHost = byHttpsHost;
  }

  /** The entry whose HTTPS services answer for `name`: its own domain, or a host its `https` lists. */
  httpsServiceOf(name: string): MapEntry | undefined {
    return this.#entries.get(name) ?? this.#byHttpsHost.get(name);
  }

  /** The entry whose onion this is (a retired one included: it is kept so that it is never dialled). */
  byOnion(onion: string): MapEntry | undefined {
    return this.#byOnion.get(onion);
  }

  static layered(layers: Iterable<Iterable<MapEntry>>): OnionMap {
    const all: MapEntry[] = [];
    for (const layer of layers) all.push(...layer);
    return new OnionMap(all);
  }

  get(domain: string): MapEntry | undefined {
    return this.#entries.get(domain);
  }

  get size(): number {
    return this.#entries.size;
  }

  entries(): MapEntry[] {
    return [...this.#entries.values()].sort((a, b) => a.domain.localeCompare(b.domain));
  }
}
