import { readFileSync } from 'node:fs';
import type { LevelWithSilent } from 'pino';
import { DEFAULT_XML_LIMITS } from '../policy/xml-events.js';
import { isLoopback, parseEndpoint, type Endpoint } from '../proxy/endpoint.js';
import { UsageError } from '../proxy/errors.js';
import type { ProxyConfig } from '../proxy/server.js';
import type { Isolation } from '../proxy/session.js';
import { LOG_LEVELS } from './logger.js';

/** Options as typed on the command line or written in a --config JSON file (same names, camelCase). */
export interface DaemonOptions {
  listen?: string;
  allowRemote?: boolean;
  tor?: string;
  map?: string;
  onionOnly?: boolean;
  isolation?: string;
  maxConnections?: string | number;
  headerTimeout?: string | number;
  negotiationTimeout?: string | number;
  connectTimeout?: string | number;
  preTlsBytes?: string | number;
  logLevel?: string;
  config?: string;
}

export const DEFAULTS = {
  listen: '127.0.0.1:5222',
  tor: '127.0.0.1:9050',
  isolation: 'per-connection',
  maxConnections: 4096,
  headerTimeout: 20,
  negotiationTimeout: 180,
  connectTimeout: 120,
  preTlsBytes: DEFAULT_XML_LIMITS.maxBytes,
  logLevel: 'info',
} as const;

export interface DaemonConfig {
  readonly proxy: ProxyConfig;
  readonly mapFiles: readonly string[];
  readonly logLevel: LevelWithSilent;
}

const CONFIG_KEYS = new Set<string>([
  'listen', 'allowRemote', 'tor', 'map', 'onionOnly', 'isolation', 'maxConnections', 'headerTimeout',
  'negotiationTimeout', 'connectTimeout', 'preTlsBytes', 'logLevel',
]);

export function readConfigFile(file: string): DaemonOptions {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UsageError(`--config ${file}: ${(error as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new UsageError(`--config ${file}: expected a JSON object of options`);
  }
  for (const key of Object.keys(data)) {
    if (!CONFIG_KEYS.has(key)) throw new UsageError(`--config ${file}: unknown option "${key}"`);
  }
  return data as DaemonOptions;
}

/** Command-line options over the --config file over the defaults; every value checked here. */
export function buildDaemonConfig(cli: DaemonOptions): DaemonConfig {
  const file = cli.config ? readConfigFile(cli.config) : {};
  const options: DaemonOptions = { ...file, ...definedOnly(cli) };
  const listen = parseEndpoint(options.listen ?? DEFAULTS.listen, '--listen', { portZero: true });
  if (listen.kind !== 'tcp') throw new UsageError('--listen: expected HOST:PORT');
  if (!isLoopback(listen.host) && options.allowRemote !== true) {
    throw new UsageError(`--listen ${options.listen}: not a loopback address; anyone who can reach it could use your Tor. Add --allow-remote if you really mean it`);
  }
  const tor: Endpoint = parseEndpoint(options.tor ?? DEFAULTS.tor, '--tor', { unix: true });
  const isolation = options.isolation ?? DEFAULTS.isolation;
  if (!['per-connection', 'per-domain', 'none'].includes(isolation)) {
    throw new UsageError(`--isolation: expected per-connection, per-domain or none, got "${isolation}"`);
  }
  const logLevel = options.logLevel ?? DEFAULTS.logLevel;
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }
  return {
    proxy: {
      listen,
      tor,
      onionOnly: options.onionOnly === true,
      isolation: isolation as Isolation,
      maxConnections: whole(options.maxConnections ?? DEFAULTS.maxConnections, '--max-connections', 1, 1_000_000),
      xmlLimits: { ...DEFAULT_XML_LIMITS, maxBytes: whole(options.preTlsBytes ?? DEFAULTS.preTlsBytes, '--pre-tls-bytes', 1024, 1 << 24) },
      headerTimeoutMs: 1000 * whole(options.headerTimeout ?? DEFAULTS.headerTimeout, '--header-timeout', 1, 3600),
      negotiationTimeoutMs: 1000 * whole(options.negotiationTimeout ?? DEFAULTS.negotiationTimeout, '--negotiation-timeout', 1, 3600),
      connectTimeoutMs: 1000 * whole(options.connectTimeout ?? DEFAULTS.connectTimeout, '--connect-timeout', 1, 3600),
      lingerMs: 2000,
    },
    mapFiles: options.map ? [options.map] : [],
    logLevel: logLevel as LevelWithSilent,
  };
}

function whole(value: string | number, flag: string, min: number, max: number): number {
  const n = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag}: expected a whole number from ${min} to ${max}, got "${value}"`);
  return n;
}

function definedOnly(options: DaemonOptions): DaemonOptions {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as DaemonOptions;
}
