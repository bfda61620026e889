import { z } from 'zod';
import { LOG_LEVELS } from './logger.js';

const seconds = z.int().min(1).max(3600);

/**
 * The --config file: the command line's long options in camelCase, each with its type and
 * range. Unknown keys are refused, so a misspelt option never silently does nothing.
 */
export const CONFIG_SCHEMA = z.strictObject({
  $schema: z.string().optional().describe('Where editors find this schema'),
  listen: z.string().optional().describe('The connect-server door, HOST:PORT on loopback (default 127.0.0.1:5222)'),
  socks: z.string().optional().describe('The SOCKS5 door, HOST:PORT on loopback (off unless given)'),
  socksAllowOtherPorts: z.boolean().optional().describe('Pass other ports through Tor unchecked at the SOCKS door'),
  allowRemote: z.boolean().optional().describe('Allow doors on addresses other than loopback'),
  tor: z.string().optional().describe("Tor's SOCKS port, HOST:PORT or unix:PATH (default 127.0.0.1:9050)"),
  map: z.string().optional().describe('An onion map file, layered over the others'),
  onionOnly: z.boolean().optional().describe('Refuse domains without a usable onion service instead of using a Tor exit'),
  pipelining: z.boolean().optional().describe('Send <starttls/> with the stream header, both with Tor\'s connect request (default true)'),
  isolation: z.enum(['per-connection', 'per-domain', 'none']).optional().describe('How connections share Tor circuits'),
  maxConnections: z.int().min(1).max(1_000_000).optional().describe('Connections open at once (default: half the open-file limit)'),
  headerTimeout: seconds.optional().describe('Seconds a client has to send its stream header'),
  negotiationTimeout: seconds.optional().describe('Seconds until encryption must be set up'),
  connectTimeout: seconds.optional().describe('Seconds Tor has to connect'),
  preTlsBytes: z.int().min(1024).max(1 << 24).optional().describe('Bytes each side may send before TLS'),
  preTlsMemory: z.int().min(1).max(65536).optional().describe('MiB all connections still setting up TLS may hold together; past it, new ones are refused'),
  logLevel: z.enum(LOG_LEVELS as [string, ...string[]]).optional().describe('fatal, error, warn, info, debug, trace or silent'),
  control: z.union([z.string().min(1), z.literal(false)], { error: 'expected the path of a Unix socket (or false for none)' }).optional().describe('The control socket path, or false for none'),
});

export type ConfigFile = z.infer<typeof CONFIG_SCHEMA>;
