import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Activity, ActivityEvent } from '../proxy/activity.js';
import type { Endpoint } from '../common/endpoint.js';
import type { DoorAddress } from '../proxy/server.js';
import {
  CLOSE, CONTROL_VERSION, errorMessage, eventMessage, parseRequest,
  type ClientStats, type ConnectionEntry, type RecentRefusal, type ReloadOutcome, type ServerMessage, type SnapshotMessage,
} from './protocol.js';
import { TorProbe } from './tor-status.js';

/** What the control socket reads from the daemon (a ProxyServer fits). */
export interface ControlSource {
  readonly activity: Activity;
  readonly addresses: readonly DoorAddress[];
  readonly map: { readonly size: number };
  readonly mapGeneration: number;
}

export interface ControlLimits {
  /** Clients at once; one more is told to try again later (close code 1013). */
  readonly maxClients: number;
  /** Largest frame a client may send (ws's default is 100 MiB). */
  readonly maxPayload: number;
  /** Unsent bytes to one client past which nothing more is queued for it: events are dropped and counted. */
  readonly bufferLimit: number;
  /** Once a dropping client is down to this, it gets a fresh snapshot and events again. */
  readonly resumeBelow: number;
  readonly requestsPerSecond: number;
  /** Connections listed in a snapshot; the rest are counted in `connectionsOmitted`. */
  readonly listedConnections: number;
  readonly recentRefusals: number;
}

export const DEFAULT_CONTROL_LIMITS: ControlLimits = {
  maxClients: 8,
  maxPayload: 4096,
  bufferLimit: 64 * 1024,
  resumeBelow: 16 * 1024,
  requestsPerSecond: 20,
  listedConnections: 256,
  recentRefusals: 20,
};

export interface ControlServerOptions {
  /** Already checked by prepareControlPath(). */
  readonly path: string;
  readonly source: ControlSource;
  readonly tor: Endpoint;
  readonly version: string;
  /** The same reload as SIGHUP. */
  readonly reload: () => ReloadOutcome;
  readonly log: Logger;
  readonly limits?: Partial<ControlLimits>;
}

interface Client {
  readonly id: number;
  readonly ws: WebSocket;
  subscribed: boolean;
  domains: boolean;
  dropped: number;
  peakBuffered: number;
  /** Dropped something: nothing more until it has drained and had a fresh snapshot. */
  behind: boolean;
  resyncing: boolean;
  windowStart: number;
  windowRequests: number;
  /** Counts subscribe and unsubscribe requests: a snapshot awaited for one request must not undo a later one. */
  subscriptionRequests: number;
}

const DRAIN_CHECK_MS = 100;
const CLOSE_GRACE_MS = 500;

/**
 * The control socket: a WebSocket server on a Unix socket only the daemon's user can open.
 * Nothing here may slow the relay: events go out only while a client keeps up, and a client that
 * stops reading costs at most `bufferLimit` bytes.
 */
export class ControlServer {
  readonly #options: ControlServerOptions;
  readonly #limits: ControlLimits;
  readonly #http: http.Server;
  readonly #wss: WebSocketServer;
  readonly #clients = new Map<number, Client>();
  readonly #recent: RecentRefusal[] = [];
  readonly #tor: TorProbe;
  readonly #log: Logger;
  #nextId = 1;
  #inode = 0;
  #drainTimer: NodeJS.Timeout | undefined;

  private constructor(options: ControlServerOptions) {
    this.#options = options;
    this.#limits = { ...DEFAULT_CONTROL_LIMITS, ...options.limits };
    this.#log = options.log;
    this.#tor = new TorProbe(options.tor);
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: this.#limits.maxPayload, perMessageDeflate: false, clientTracking: false });
    this.#http = http.createServer((_request, response) => {
      response.writeHead(426, { 'content-type': 'text/plain', connection: 'close' });
      response.end('xmpp-onion-proxy control socket: WebSocket only (try `xmpp-onion-proxy status`)\n');
    });
    this.#http.headersTimeout = 5000;
    this.#http.requestTimeout = 5000;
    // Sockets still in the HTTP handshake count too: past twice the client limit they are dropped unanswered.
    this.#http.maxConnections = 2 * this.#limits.maxClients;
    this.#http.on('upgrade', (request: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => {});
      this.#wss.handleUpgrade(request, socket, head, (ws) => this.#connected(ws));
    });
    this.#http.on('clientError', (_error, socket) => socket.destroy());
  }

  static async listen(options: ControlServerOptions): Promise<ControlServer> {
    const server = new ControlServer(options);
    await new Promise<void>((resolve, reject) => {
      server.#http.once('error', reject);
      server.#http.listen({ path: options.path }, () => {
        server.#http.removeListener('error', reject);
        resolve();
      });
    });
    // The folder is 0700 already; the socket itself is made private as well.
    chmodSync(options.path, 0o600);
    server.#inode = lstatSync(options.path).ino;
    server.#http.on('error', (error) => server.#log.error({ err: error }, 'control socket error'));
    options.source.activity.on('event', server.#onEvent);
    server.#log.info({ control: options.path }, 'control socket ready');
    return server;
  }

  get path(): string {
    return this.#options.path;
  }

  get clients(): number {
    return this.#clients.size;
  }

  /** Tells every client the daemon is stopping, removes the socket, and resolves once all are gone. */
  async close(): Promise<void> {
    this.#options.source.activity.removeListener('event', this.#onEvent);
    clearInterval(this.#drainTimer);
    const gone = [...this.#clients.values()].map((client) => new Promise<void>((resolve) => {
      client.ws.once('close', () => resolve());
      client.ws.close(CLOSE.goingAway, 'daemon stopping');
      // A client that does not read would keep its socket open until ws's own 30 s timeout.
      setTimeout(() => client.ws.terminate(), CLOSE_GRACE_MS).unref();
    }));
    this.#wss.close();
    const closed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
    this.#http.closeAllConnections();
    await Promise.all([...gone, closed]);
    this.#unlinkOwnSocket();
  }

  #unlinkOwnSocket(): void {
    const stats = lstatSync(this.#options.path, { throwIfNoEntry: false });
    // Only the socket this server made: another daemon may have taken the name since.
    if (stats?.isSocket() && stats.ino === this.#inode) unlinkSync(this.#options.path);
  }

  #connected(ws: WebSocket): void {
    ws.on('error', () => {});
    if (this.#clients.size >= this.#limits.maxClients) {
      this.#log.warn({ clients: this.#clients.size }, 'control client refused: too many');
      ws.close(CLOSE.tryAgainLater, `at most ${this.#limits.maxClients} control clients at once; close one and try again`);
      setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
      return;
    }
    const id = this.#nextId++;
    const client: Client = { id, ws, subscribed: false, domains: false, dropped: 0, peakBuffered: 0, behind: false, resyncing: false, windowStart: 0, windowRequests: 0, subscriptionRequests: 0 };
    this.#clients.set(id, client);
    this.#log.debug({ client: id }, 'control client connected');
    ws.on('message', (data: RawData, isBinary: boolean) => this.#message(client, data, isBinary));
    ws.on('close', (code: number) => {
      this.#clients.delete(id);
      const level = client.dropped > 0 ? 'info' : 'debug';
      this.#log[level]({ client: id, code, dropped: client.dropped, peakBuffered: client.peakBuffered }, 'control client gone');
    });
  }

  #message(client: Client, data: RawData, isBinary: boolean): void {
    if (isBinary) {
      client.ws.close(CLOSE.unsupportedData, 'text frames only (JSON)');
      return;
    }
    const now = Date.now();
    if (now - client.windowStart >= 1000) {
      client.windowStart = now;
      client.windowRequests = 0;
    }
    if (++client.windowRequests > this.#limits.requestsPerSecond) {
      client.ws.close(CLOSE.policyViolation, `more than ${this.#limits.requestsPerSecond} requests a second`);
      return;
    }
    const request = parseRequest(rawText(data));
    if ('problem' in request) {
      this.#send(client, errorMessage(request.problem, request.message));
      return;
    }
    switch (request.type) {
      case 'snapshot':
        void this.#sendSnapshot(client, request.domains);
        return;
      case 'subscribe':
        void this.#sendSnapshot(client, request.domains, ++client.subscriptionRequests);
        return;
      case 'unsubscribe':
        client.subscriptionRequests++;
        client.subscribed = false;
        return;
      case 'reload': {
        this.#log.info({ client: client.id }, 'map reload asked on the control socket');
        this.#send(client, { type: 'reload', version: CONTROL_VERSION, ...this.#options.reload() });
        return;
      }
    }
  }

  #onEvent = (event: ActivityEvent): void => {
    const at = Date.now();
    if (event.type === 'refused') {
      this.#recent.push({ at, id: event.id, reason: event.reason });
      if (this.#recent.length > this.#limits.recentRefusals) this.#recent.shift();
    }
    // Serialised at most twice per event, whatever the number of subscribers.
    let plain: string | undefined;
    let withDomain: string | undefined;
    for (const client of this.#clients.values()) {
      if (!client.subscribed) continue;
      const text = client.domains
        ? (withDomain ??= JSON.stringify(eventMessage(event, at, true)))
        : (plain ??= JSON.stringify(eventMessage(event, at, false)));
      this.#sendText(client, text);
    }
  };

  #send(client: Client, message: ServerMessage): void {
    this.#sendText(client, JSON.stringify(message));
  }

  /** Queues `text` unless the client is behind: then it is dropped and counted. Never waits. */
  #sendText(client: Client, text: string): void {
    const ws = client.ws;
    if (ws.readyState !== WebSocket.OPEN) return;
    if (client.behind || ws.bufferedAmount >= this.#limits.bufferLimit) {
      client.dropped++;
      if (!client.behind) {
        client.behind = true;
        this.#watchDrain();
      }
      return;
    }
    ws.send(text);
    client.peakBuffered = Math.max(client.peakBuffered, ws.bufferedAmount);
  }

  /** ws has no 'drain' event: while some client is behind, look at its buffer a few times a second. */
  #watchDrain(): void {
    if (this.#drainTimer) return;
    this.#drainTimer = setInterval(() => {
      let waiting = 0;
      for (const client of this.#clients.values()) {
        if (!client.behind || client.resyncing) continue;
        if (client.ws.bufferedAmount <= this.#limits.resumeBelow) void this.#resync(client);
        else waiting++;
      }
      if (waiting === 0) {
        clearInterval(this.#drainTimer);
        this.#drainTimer = undefined;
      }
    }, DRAIN_CHECK_MS);
    this.#drainTimer.unref();
  }

  /** A client that caught up gets a fresh snapshot (with its drop count), then events again. */
  async #resync(client: Client): Promise<void> {
    client.resyncing = true;
    const tor = await this.#tor.status();
    client.resyncing = false;
    if (!client.behind || client.ws.readyState !== WebSocket.OPEN) return;
    if (client.ws.bufferedAmount > this.#limits.resumeBelow) {
      this.#watchDrain();
      return;
    }
    client.behind = false;
    this.#send(client, this.#snapshot(client, tor, client.domains));
  }

  /**
   * With `subscribe` (its request number), events start right after the snapshot, in the same
   * tick: none comes before it; a request made meanwhile (an unsubscribe) wins over this one.
   */
  async #sendSnapshot(client: Client, domains: boolean, subscribe?: number): Promise<void> {
    const tor = await this.#tor.status();
    if (subscribe === client.subscriptionRequests) {
      client.subscribed = true;
      client.domains = domains;
    }
    this.#send(client, this.#snapshot(client, tor, domains));
  }

  #snapshot(client: Client, tor: SnapshotMessage['tor'], domains: boolean): SnapshotMessage {
    const { activity, addresses, map, mapGeneration } = this.#options.source;
    const now = Date.now();
    const connections: ConnectionEntry[] = [];
    let relaying = 0;
    for (const info of activity.connections.values()) {
      if (info.state === 'relaying') relaying++;
      if (connections.length >= this.#limits.listedConnections) continue;
      connections.push({
        id: info.id,
        door: info.door,
        ...(info.route !== undefined ? { route: info.route } : {}),
        ...(info.mode !== undefined ? { mode: info.mode } : {}),
        state: info.state,
        ageMs: now - info.startedAt,
        ...(domains && info.domain !== undefined ? { domain: info.domain } : {}),
      });
    }
    const counters = activity.counters;
    const refused = { ...counters.refused };
    const clients: ClientStats[] = [...this.#clients.values()].map((c) => ({
      client: c.id,
      subscribed: c.subscribed,
      buffered: c.ws.bufferedAmount,
      peakBuffered: c.peakBuffered,
      dropped: c.dropped,
    }));
    return {
      type: 'snapshot',
      version: CONTROL_VERSION,
      at: now,
      daemon: { version: this.#options.version, pid: process.pid, uptimeMs: now - activity.startedAt, rssBytes: process.memoryUsage.rss() },
      tor,
      map: { generation: mapGeneration, entries: map.size },
      doors: addresses.map(({ door, host, port }) => ({ door, host, port })),
      counters: {
        accepted: counters.accepted,
        open: activity.connections.size,
        relaying,
        refused,
        refusedTotal: Object.values(refused).reduce((a, b) => a + b, 0),
        bytesFromClient: counters.bytesFromClient,
        bytesFromServer: counters.bytesFromServer,
      },
      connections,
      connectionsOmitted: activity.connections.size - connections.length,
      recentRefusals: [...this.#recent],
      control: { path: this.#options.path, maxClients: this.#limits.maxClients, clients },
      you: { client: client.id, subscribed: client.subscribed, domains: client.domains, dropped: client.dropped },
    };
  }
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
}
