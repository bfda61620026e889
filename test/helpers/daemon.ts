import { Writable } from 'node:stream';
import type { Test } from 'tap';
import type { MapEntry } from '../../src/onionmap/entry.js';
import { createLogger } from '../../src/cli/logger.js';
import { OnionMap } from '../../src/onionmap/onion-map.js';
import { DEFAULT_XML_LIMITS } from '../../src/policy/xml-events.js';
import { ProxyServer, type ProxyConfig } from '../../src/proxy/server.js';

export interface TestDaemon {
  /** The connect-server door. */
  readonly port: number;
  readonly socksPort: number;
  readonly proxy: ProxyServer;
  /** Every log line so far, parsed; the daemon logs at trace level in tests. */
  logs(): Array<Record<string, unknown>>;
  rawLogs(): string;
}

export type EntrySpec = Omit<MapEntry, 'origin' | 'port' | 'status'> & Partial<Pick<MapEntry, 'port' | 'status'>>;

export function testMap(entries: readonly EntrySpec[]): OnionMap {
  return new OnionMap(entries.map((e) => ({ port: 5222, status: e.onion ? 'active' : 'no-onion', origin: 'test', ...e }) as MapEntry));
}

/** The proxy in this process on 127.0.0.1 port 0, logging into memory; closed at teardown. */
export async function startTestDaemon(t: Test, torPort: number, entries: readonly EntrySpec[], overrides: Partial<ProxyConfig> = {}): Promise<TestDaemon> {
  let raw = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      raw += chunk.toString();
      done();
    },
  });
  // The production logger and serializers: what tests read is what users get.
  const log = await createLogger('trace', { pretty: false, destination: sink });
  const config: ProxyConfig = {
    doors: [
      { door: 'connect-server', listen: { kind: 'tcp', host: '127.0.0.1', port: 0 } },
      { door: 'socks', listen: { kind: 'tcp', host: '127.0.0.1', port: 0 } },
    ],
    tor: { kind: 'tcp', host: '127.0.0.1', port: torPort },
    socksAllowOtherPorts: false,
    onionOnly: false,
    pipelining: true,
    isolation: 'per-connection',
    maxConnections: 100,
    preTlsMemoryBytes: 64 * 2 ** 20,
    xmlLimits: DEFAULT_XML_LIMITS,
    headerTimeoutMs: 10_000,
    negotiationTimeoutMs: 20_000,
    connectTimeoutMs: 10_000,
    lingerMs: 500,
    ...overrides,
  };
  const proxy = await ProxyServer.start(config, testMap(entries), log);
  t.teardown(() => proxy.close());
  return {
    port: proxy.addressOf('connect-server')!.port,
    socksPort: proxy.addressOf('socks')!.port,
    proxy,
    logs: () => raw.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>),
    rawLogs: () => raw,
  };
}
