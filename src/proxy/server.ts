import net from 'node:net';
import { createHmac, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { OnionMap } from '../onionmap/onion-map.js';
import { decideRoute, type Route } from '../onionmap/route.js';
import { streamRoute } from '../policy/negotiation.js';
import { refusal, streamErrorXml } from '../policy/refusal.js';
import type { XmlLimits } from '../policy/xml-events.js';
import { Activity, type ConnectionReport, type DoorKind } from './activity.js';
import { formatEndpoint, type Endpoint } from './endpoint.js';
import { Session, type Isolation, type SessionOptions } from './session.js';
import { acceptSocksClient, type Closable } from './socks-door.js';
import { REPLY, socksReply } from './socks5-handshake.js';
import { connectThroughTor, newIsolationKey } from './tor-connect.js';

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
  readonly isolation: Isolation;
  readonly socksAllowOtherPorts: boolean;
  readonly maxConnections: number;
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
  readonly #connections = new Set<Closable>();
  readonly #config: ProxyConfig;
  readonly #log: Logger;
  readonly #isolationSecret = randomBytes(32);
  readonly activity = new Activity();
  #map: OnionMap;
  #mapGeneration = 1;
  #nextId = 1;

  private constructor(config: ProxyConfig, map: OnionMap, log: Logger) {
    this.#config = config;
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

  #isolationKey(domain: string): string | undefined {
    switch (this.#config.isolation) {
      case 'per-connection':
        return newIsolationKey();
      case 'per-domain':
        return this.#keyed(domain);
      case 'none':
        return undefined;
    }
  }

  #keyed(text: string): string {
    return createHmac('sha256', this.#isolationSecret).update(text).digest('base64url').slice(0, 16);
  }

  #openTor = (route: Route, isolationKey: string | undefined, signal?: AbortSignal): Promise<net.Socket> =>
    connectThroughTor({
      tor: this.#config.tor,
      route,
      timeoutMs: this.#config.connectTimeoutMs,
      ...(isolationKey ? { isolationKey } : {}),
      ...(signal ? { signal } : {}),
    });

  #sessionBase(): Omit<SessionOptions, 'decideRoute' | 'openUpstream'> {
    const config = this.#config;
    return {
      xmlLimits: config.xmlLimits,
      headerTimeoutMs: config.headerTimeoutMs,
      negotiationTimeoutMs: config.negotiationTimeoutMs,
      lingerMs: config.lingerMs,
    };
  }

  #accept(door: DoorKind, socket: net.Socket): void {
    const id = this.#nextId;
    this.#nextId = (this.#nextId % Number.MAX_SAFE_INTEGER) + 1;
    const report = this.activity.report(id, door, this.#log);
    socket.on('error', () => {});
    socket.setNoDelay(true);
    if (this.#connections.size >= this.#config.maxConnections) {
      this.#refuseOverLimit(door, socket, id, report);
      return;
    }
    report.accepted();
    const closed = (connection: Closable): void => {
      this.#connections.delete(connection);
    };
    if (door === 'socks') {
      this.#connections.add(acceptSocksClient(id, socket, {
        map: () => this.#map,
        policy: { onionOnly: this.#config.onionOnly, allowOtherPorts: this.#config.socksAllowOtherPorts },
        openTor: this.#openTor,
        // The client's own SOCKS credentials, when it sent some, choose its circuit (as with Tor itself);
        // both fields are encoded unambiguously, so no two different pairs share a key.
        isolationKey: (request, domain) =>
          request.credentials ? this.#keyed(JSON.stringify([request.credentials.username, request.credentials.password])) : this.#isolationKey(domain),
        session: this.#sessionBase(),
      }, report, closed));
      return;
    }
    const session: Session = new Session(id, socket, {
      ...this.#sessionBase(),
      decideRoute: (domain) => streamRoute(decideRoute(this.#map, domain, { onionOnly: this.#config.onionOnly })),
      openUpstream: (route, domain, signal) => this.#openTor(route, this.#isolationKey(domain), signal),
    }, report, { closed: () => closed(session) });
    this.#connections.add(session);
  }

  #refuseOverLimit(door: DoorKind, socket: net.Socket, id: number, report: ConnectionReport): void {
    const limit = this.#config.maxConnections;
    report.refused('too-many-connections', { limit, door });
    const refused = refusal('too-many-connections', 'resource-constraint', `the proxy already has ${limit} connections open; try again later`);
    // A SOCKS client gets a SOCKS refusal to its greeting; an XMPP client a stream error.
    socket.end(door === 'socks' ? Buffer.concat([Buffer.from([5, 0]), socksReply(REPLY.generalFailure)]) : streamErrorXml(refused, { withHeader: true, id: `xop-${id}` }));
    socket.setTimeout(this.#config.lingerMs, () => socket.destroy());
    socket.on('end', () => socket.destroy());
    socket.resume();
  }
}

export function describeDoors(proxy: ProxyServer, tor: Endpoint): string {
  const doors = proxy.addresses.map((a) => `${formatEndpoint({ kind: 'tcp', host: a.host, port: a.port })} (${a.door} door)`);
  return `listening on ${doors.join(', ')}; Tor SOCKS at ${formatEndpoint(tor)}`;
}
