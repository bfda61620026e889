import net from 'node:net';
import type { Logger } from 'pino';
import { formatEndpoint, type Endpoint } from '../common/endpoint.js';
import type { OnionMap } from '../onionmap/onion-map.js';
import { STREAM_ID_PREFIX } from '../policy/negotiation-state.js';
import { refusal } from '../policy/refusals.js';
import { decideRoute, type Route } from '../policy/routing.js';
import { streamErrorXml } from '../policy/serialize.js';
import type { XmlLimits } from '../policy/xml-events.js';
import { Activity, type DoorKind } from './activity.js';
import { Connection } from './connection.js';
import { IsolationKeys, type Isolation } from './isolation.js';
import { negotiationSlots } from './negotiation-memory.js';
import { Session, type SessionLimits } from './session.js';
import { acceptSocksClient, type SocksDoorOptions } from './socks-door.js';
import { socksReply } from './socks5-handshake.js';
import { connectThroughTor } from './tor-connect.js';

export type { DoorKind } from './activity.js';

export interface DoorConfig {
  readonly door: DoorKind;
  /** A loopback address, or a listening socket inherited from systemd. */
  readonly listen: Extract<Endpoint, { kind: 'tcp' }> | { readonly kind: 'fd'; readonly fd: number };
}

export interface ProxyConfig {
  readonly doors: readonly DoorConfig[];
  readonly tor: Endpoint;
  readonly onionOnly: boolean;
  /** `<starttls/>` with the stream header, both as Tor's optimistic data (XEP-0305); off with `--no-pipelining`. */
  readonly pipelining: boolean;
  readonly isolation: Isolation;
  readonly socksAllowOtherPorts: boolean;
  readonly maxConnections: number;
  /** Memory all connections still negotiating may hold together, at worst; past it, new ones are refused. */
  readonly preTlsMemoryBytes: number;
  readonly xmlLimits: XmlLimits;
  readonly headerTimeoutMs: number;
  readonly negotiationTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly lingerMs: number;
}

export interface DoorAddress {
  readonly door: DoorKind;
  readonly host: string;
  readonly port: number;
}

/** The front doors: loopback listeners whose every connection goes through Tor under the policy. */
export class ProxyServer {
  readonly #listeners: Array<{ door: DoorKind; server: net.Server }> = [];
  readonly #connections = new Set<Connection>();
  /** Connections not yet relaying nor ending, and how many may be at once. */
  #negotiating = 0;
  readonly #negotiationSlots: number;
  readonly #config: ProxyConfig;
  readonly #log: Logger;
  readonly #isolation: IsolationKeys;
  /** Built once: every connection shares them. */
  readonly #limits: SessionLimits;
  readonly #socksOptions: SocksDoorOptions;
  readonly activity = new Activity();
  #map: OnionMap;
  #mapGeneration = 1;
  #nextId = 1;

  private constructor(config: ProxyConfig, map: OnionMap, log: Logger) {
    this.#config = config;
    this.#isolation = new IsolationKeys(config.isolation);
    this.#negotiationSlots = negotiationSlots(config.preTlsMemoryBytes, config.xmlLimits);
    this.#limits = { xmlLimits: config.xmlLimits, headerTimeoutMs: config.headerTimeoutMs, negotiationTimeoutMs: config.negotiationTimeoutMs };
    this.#socksOptions = {
      map: () => this.#map,
      policy: { onionOnly: config.onionOnly, pipelining: config.pipelining, allowOtherPorts: config.socksAllowOtherPorts },
      openTor: this.#openTor,
      isolationKey: (request, destination) =>
        request.credentials ? this.#isolation.forCredentials(request.credentials.username, request.credentials.password) : this.#isolation.forDomain(destination),
      limits: this.#limits,
    };
    this.#map = map;
    this.#log = log;
  }

  static async start(config: ProxyConfig, map: OnionMap, log: Logger): Promise<ProxyServer> {
    const proxy = new ProxyServer(config, map, log);
    try {
      for (const door of config.doors) await proxy.#listen(door);
    } catch (error) {
      await proxy.close();
      throw error;
    }
    return proxy;
  }

  get addresses(): DoorAddress[] {
    return this.#listeners.map(({ door, server }) => {
      const address = server.address() as net.AddressInfo;
      return { door, host: address.address, port: address.port };
    });
  }

  /** The first door's address (the connect-server door unless only SOCKS is configured). */
  get address(): net.AddressInfo {
    return this.#listeners[0]!.server.address() as net.AddressInfo;
  }

  addressOf(door: DoorKind): DoorAddress | undefined {
    return this.addresses.find((a) => a.door === door);
  }

  get connections(): number {
    return this.#connections.size;
  }

  /** Connections still negotiating (not yet relaying), and the most there may be at once. */
  get negotiating(): { readonly now: number; readonly limit: number } {
    return { now: this.#negotiating, limit: this.#negotiationSlots };
  }

  get map(): OnionMap {
    return this.#map;
  }

  /** New connections use the new map; open ones keep the route they already have. */
  setMap(map: OnionMap): void {
    this.#map = map;
    this.#mapGeneration++;
  }

  /** 1 for the map the daemon started with, then one more per reload. */
  get mapGeneration(): number {
    return this.#mapGeneration;
  }

  /** Stops accepting and ends every open connection. */
  async close(): Promise<void> {
    const closing = this.#listeners.map(({ server }) => new Promise<void>((resolve) => server.close(() => resolve())));
    for (const connection of this.#connections) connection.destroy('shutdown');
    await Promise.all(closing);
  }

  async #listen(door: DoorConfig): Promise<void> {
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.#accept(door.door, socket));
    server.on('error', (error) => this.#log.error({ err: error, door: door.door }, 'listener error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const ready = (): void => {
        server.removeListener('error', reject);
        resolve();
      };
      if (door.listen.kind === 'fd') server.listen({ fd: door.listen.fd }, ready);
      else server.listen({ host: door.listen.host, port: door.listen.port, exclusive: true }, ready);
    });
    this.#listeners.push({ door: door.door, server });
  }

  #openTor = (route: Route, isolationKey: string | undefined, signal: AbortSignal, send: { first?: Buffer; optimistic?: boolean } = {}): Promise<net.Socket> =>
    connectThroughTor({
      tor: this.#config.tor,
      route,
      timeoutMs: this.#config.connectTimeoutMs,
      ...(isolationKey ? { isolationKey } : {}),
      signal,
      ...send,
    });

  #accept(door: DoorKind, socket: net.Socket): void {
    const id = this.#nextId;
    this.#nextId = (this.#nextId % Number.MAX_SAFE_INTEGER) + 1;
    socket.setNoDelay(true);
    const report = this.activity.report(id, door, this.#log);
    const config = this.#config;
    const refused = this.#connections.size >= config.maxConnections
      ? refusal('too-many-connections', { limit: config.maxConnections })
      : this.#negotiating >= this.#negotiationSlots
        ? refusal('too-many-negotiations', { limit: this.#negotiationSlots, mib: config.preTlsMemoryBytes / 2 ** 20 })
        : undefined;
    if (refused) {
      // A SOCKS client gets a SOCKS refusal to its greeting; an XMPP client a stream error.
      const connection = new Connection(id, socket, report, config.lingerMs, { closed: () => {} });
      connection.refuse(refused, door === 'socks'
        ? Buffer.concat([Buffer.from([5, 0]), socksReply(refused.socksReply)])
        : streamErrorXml(refused, { withHeader: true, id: `${STREAM_ID_PREFIX}${id}` }));
      return;
    }
    this.#negotiating++;
    const connection = new Connection(id, socket, report, config.lingerMs, {
      closed: (closed) => this.#connections.delete(closed),
      settled: () => this.#negotiating--,
    });
    report.accepted();
    this.#connections.add(connection);
    if (door === 'socks') {
      acceptSocksClient(connection, this.#socksOptions);
      return;
    }
    new Session(connection, {
      ...this.#limits,
      decideRoute: (domain) => decideRoute(this.#map, domain, { onionOnly: config.onionOnly, pipelining: config.pipelining }),
      openUpstream: (route, domain, signal, first, optimistic) => this.#openTor(route, this.#isolation.forDomain(domain), signal, { first, optimistic }),
    });
  }
}

export function describeDoors(proxy: ProxyServer, tor: Endpoint): string {
  const doors = proxy.addresses.map((a) => `${formatEndpoint({ kind: 'tcp', host: a.host, port: a.port })} (${a.door} door)`);
  return `listening on ${doors.join(', ')}; Tor SOCKS at ${formatEndpoint(tor)}`;
}
