import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { LevelWithSilent } from 'pino';
import { DEFAULT_XML_LIMITS } from '../policy/xml-events.js';
import { isLoopback, parseEndpoint, type Endpoint } from '../common/endpoint.js';
import { resolveMapLayers, type MapLayer } from '../onionmap/map-layers.js';
import { UsageError } from '../common/errors.js';
import type { DoorConfig, ProxyConfig } from '../proxy/server.js';
import type { Isolation } from '../proxy/isolation.js';
import { defaultControlPath, MAX_SOCKET_PATH_BYTES } from '../control/socket-path.js';
import { defaultMaxConnections } from './fd-limit.js';
import { LOG_LEVELS } from './logger.js';
import { CONFIG_SCHEMA } from './config-schema.js';
import { schemaProblems } from '../common/schema-problems.js';

/** Options as typed on the command line or written in a --config JSON file (same names, camelCase). */
export interface DaemonOptions {
  listen?: string;
  socks?: string;
  socksAllowOtherPorts?: boolean;
  allowRemote?: boolean;
  tor?: string;
  map?: string;
  onionOnly?: boolean;
  /** False with --no-pipelining. */
  pipelining?: boolean;
  isolation?: string;
  maxConnections?: string | number;
  headerTimeout?: string | number;
  negotiationTimeout?: string | number;
  connectTimeout?: string | number;
  preTlsBytes?: string | number;
  preTlsMemory?: string | number;
  logLevel?: string;
  /** The control socket's path, or false for none (--no-control). */
  control?: string | false;
  config?: string;
}

export const DEFAULTS = {
  listen: '127.0.0.1:5222',
  tor: '127.0.0.1:9050',
  isolation: 'per-connection',
  headerTimeout: 20,
  negotiationTimeout: 180,
  connectTimeout: 120,
  preTlsBytes: DEFAULT_XML_LIMITS.maxBytes,
  /** MiB: with the other defaults, 409 connections negotiating at once. */
  preTlsMemory: 64,
  logLevel: 'info',
} as const;

export interface DaemonConfig {
  readonly proxy: ProxyConfig;
  /** System file, user file, then --map: read again on every SIGHUP. */
  readonly mapLayers: readonly MapLayer[];
  readonly logLevel: LevelWithSilent;
  /** The control socket; undefined with --no-control, or when there is no runtime folder to put it in. */
  readonly control: string | undefined;
}

/** The --config file, checked against its schema: a bad key, type or range is a usage error naming it. */
export function readConfigFile(file: string): DaemonOptions {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UsageError(`--config ${file}: ${(error as Error).message}`);
  }
  const parsed = CONFIG_SCHEMA.safeParse(data);
  if (!parsed.success) {
    const problems = typeof data === 'object' && data !== null && !Array.isArray(data)
      ? schemaProblems(parsed.error, data)
      : ['expected a JSON object of options'];
    throw new UsageError(`--config ${file}: ${problems.join('; ')}`);
  }
  const { $schema: _schema, ...options } = parsed.data;
  return options;
}

/** Command-line options over the --config file over the defaults; every value checked here. */
export function buildDaemonConfig(
  cli: DaemonOptions,
  env: NodeJS.ProcessEnv = process.env,
  inherited: ReadonlyMap<string, number> = new Map(),
): DaemonConfig {
  const file = cli.config ? readConfigFile(cli.config) : {};
  const options: DaemonOptions = { ...file, ...definedOnly(cli) };
  const doors = frontDoors(options, inherited);
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
      doors,
      tor,
      socksAllowOtherPorts: options.socksAllowOtherPorts === true,
      onionOnly: options.onionOnly === true,
      pipelining: options.pipelining !== false,
      isolation: isolation as Isolation,
      maxConnections: whole(options.maxConnections ?? defaultMaxConnections(), '--max-connections', 1, 1_000_000),
      xmlLimits: { ...DEFAULT_XML_LIMITS, maxBytes: whole(options.preTlsBytes ?? DEFAULTS.preTlsBytes, '--pre-tls-bytes', 1024, 1 << 24) },
      preTlsMemoryBytes: 2 ** 20 * whole(options.preTlsMemory ?? DEFAULTS.preTlsMemory, '--pre-tls-memory', 1, 65536),
      headerTimeoutMs: 1000 * whole(options.headerTimeout ?? DEFAULTS.headerTimeout, '--header-timeout', 1, 3600),
      negotiationTimeoutMs: 1000 * whole(options.negotiationTimeout ?? DEFAULTS.negotiationTimeout, '--negotiation-timeout', 1, 3600),
      connectTimeoutMs: 1000 * whole(options.connectTimeout ?? DEFAULTS.connectTimeout, '--connect-timeout', 1, 3600),
      lingerMs: 2000,
    },
    mapLayers: resolveMapLayers({ mapFile: options.map, env }),
    logLevel: logLevel as LevelWithSilent,
    control: controlSocket(options.control, env),
  };
}

function controlSocket(value: unknown, env: NodeJS.ProcessEnv): string | undefined {
  if (value === false) return undefined;
  if (value === undefined) return defaultControlPath(env);
  if (typeof value !== 'string' || value === '') throw new UsageError('--control: expected the path of a Unix socket (or false in --config for none)');
  const file = path.resolve(value);
  if (Buffer.byteLength(file) > MAX_SOCKET_PATH_BYTES) {
    throw new UsageError(`--control ${file}: longer than ${MAX_SOCKET_PATH_BYTES} bytes, the most a Unix socket path can have`);
  }
  return file;
}

function whole(value: string | number, flag: string, min: number, max: number): number {
  const n = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag}: expected a whole number from ${min} to ${max}, got "${value}"`);
  return n;
}

function definedOnly(options: DaemonOptions): DaemonOptions {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as DaemonOptions;
}

/**
 * Listening sockets inherited from systemd (named connect-server and socks) win over --listen
 * and --socks; otherwise the connect-server door on --listen and, if given, the SOCKS door.
 */
function frontDoors(options: DaemonOptions, inherited: ReadonlyMap<string, number>): DoorConfig[] {
  if (inherited.size > 0) {
    const doors: DoorConfig[] = [];
    for (const [name, fd] of inherited) {
      if (name !== 'connect-server' && name !== 'socks') {
        throw new UsageError(`systemd passed a socket named "${name}"; name them connect-server or socks (FileDescriptorName=)`);
      }
      doors.push({ door: name, listen: { kind: 'fd', fd } });
    }
    return doors;
  }
  const doors: DoorConfig[] = [{ door: 'connect-server', listen: loopbackListener(options.listen ?? DEFAULTS.listen, '--listen', options.allowRemote === true) }];
  if (options.socks !== undefined) doors.push({ door: 'socks', listen: loopbackListener(options.socks, '--socks', options.allowRemote === true) });
  return doors;
}

function loopbackListener(text: string, flag: string, allowRemote: boolean): Extract<Endpoint, { kind: 'tcp' }> {
  const endpoint = parseEndpoint(text, flag, { portZero: true });
  if (endpoint.kind !== 'tcp') throw new UsageError(`${flag}: expected HOST:PORT`);
  if (!isLoopback(endpoint.host) && !allowRemote) {
    throw new UsageError(`${flag} ${text}: not a loopback address; anyone who can reach it could use your Tor. Add --allow-remote if you really mean it`);
  }
  return endpoint;
}
