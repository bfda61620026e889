import net from 'node:net';
import { createHmac, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { OnionMap } from '../onionmap/onion-map.js';
import { decideRoute } from '../onionmap/route.js';
import { refusal, streamErrorXml } from '../policy/refusal.js';
import type { XmlLimits } from '../policy/xml-events.js';
import { formatEndpoint, type Endpoint } from './endpoint.js';
import { newIsolationKey } from './tor-connect.js';
import { Session, type Isolation, type SessionOptions } from './session.js';

export interface ProxyConfig {
  readonly listen: Extract<Endpoint, { kind: 'tcp' }>;
  readonly tor: Endpoint;
  readonly onionOnly: boolean;
  readonly isolation: Isolation;
  readonly maxConnections: number;
  readonly xmlLimits: XmlLimits;
  readonly headerTimeoutMs: number;
  readonly negotiationTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly lingerMs: number;
}

/** The connect-server front door: a loopback listener whose every connection is a Session. */
export class ProxyServer {
  readonly #server: net.Server;
  readonly #sessions = new Set<Session>();
  readonly #config: ProxyConfig;
  readonly #log: Logger;
  readonly #isolationSecret = randomBytes(32);
  #map: OnionMap;
  #nextId = 1;
  #sessionOptions: SessionOptions;

  private constructor(config: ProxyConfig, map: OnionMap, log: Logger) {
    this.#config = config;
    this.#map = map;
    this.#log = log;
    this.#sessionOptions = this.#buildSessionOptions();
    this.#server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, (socket) => this.#accept(socket));
    this.#server.on('error', (error) => log.error({ err: error }, 'listener error'));
  }

  static async start(config: ProxyConfig, map: OnionMap, log: Logger): Promise<ProxyServer> {
    const proxy = new ProxyServer(config, map, log);
    await new Promise<void>((resolve, reject) => {
      proxy.#server.once('error', reject);
      proxy.#server.listen({ host: config.listen.host, port: config.listen.port, exclusive: true }, () => {
        proxy.#server.removeListener('error', reject);
        resolve();
      });
    });
    return proxy;
  }

  get address(): net.AddressInfo {
    return this.#server.address() as net.AddressInfo;
  }

  get connections(): number {
    return this.#sessions.size;
  }

  get map(): OnionMap {
    return this.#map;
  }

  /** New connections use the new map; open ones keep the route they already have. */
  setMap(map: OnionMap): void {
    this.#map = map;
  }

  /** Stops accepting and ends every open connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const session of this.#sessions) session.destroy('shutdown');
    await closed;
  }

  #buildSessionOptions(): SessionOptions {
    const config = this.#config;
    return {
      tor: config.tor,
      decideRoute: (domain) => decideRoute(this.#map, domain, { onionOnly: config.onionOnly }),
      isolationKey: (domain) => {
        switch (config.isolation) {
          case 'per-connection':
            return newIsolationKey();
          case 'per-domain':
            return createHmac('sha256', this.#isolationSecret).update(domain).digest('base64url').slice(0, 16);
          case 'none':
            return undefined;
        }
      },
      xmlLimits: config.xmlLimits,
      headerTimeoutMs: config.headerTimeoutMs,
      negotiationTimeoutMs: config.negotiationTimeoutMs,
      connectTimeoutMs: config.connectTimeoutMs,
      lingerMs: config.lingerMs,
    };
  }

  #accept(socket: net.Socket): void {
    const id = this.#nextId;
    this.#nextId = (this.#nextId % Number.MAX_SAFE_INTEGER) + 1;
    const log = this.#log.child({ conn: id });
    socket.on('error', () => {});
    if (this.#sessions.size >= this.#config.maxConnections) {
      log.warn({ reason: 'too-many-connections', limit: this.#config.maxConnections }, 'refused');
      const refused = refusal('too-many-connections', 'resource-constraint',
        `the proxy already has ${this.#config.maxConnections} connections open; try again later`);
      socket.end(streamErrorXml(refused, { withHeader: true, id: `xop-${id}` }));
      socket.setTimeout(this.#config.lingerMs, () => socket.destroy());
      socket.on('end', () => socket.destroy());
      socket.resume();
      return;
    }
    log.info({ door: 'connect-server' }, 'accepted');
    const session = new Session(id, socket, this.#sessionOptions, log, {
      closed: (s) => this.#sessions.delete(s),
    });
    this.#sessions.add(session);
  }
}

export function describeListen(config: ProxyConfig): string {
  return `listening on ${formatEndpoint(config.listen)} (connect-server door), Tor SOCKS at ${formatEndpoint(config.tor)}`;
}
