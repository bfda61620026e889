import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { schemaProblems } from '../common/schema-problems.js';
import { MapFileError } from '../common/errors.js';
import net from 'node:net';
import { DEFAULT_CLIENT_PORT, STATUSES, type EntryStatus, type MapEntry } from './entry.js';
import { normalizeDomain } from './domain.js';
import { validateOnion } from './onion-address.js';

const text = z.string().min(1);
const port = z.int().min(1).max(65535);

/** One entry of an onions.json file; the domain is its key. */
export const ENTRY_SCHEMA = z.strictObject({
  onion: text.optional().describe('v3 onion address (56 base32 characters and .onion)'),
  port: port.optional().describe('client-to-server port (STARTTLS), default 5222'),
  directTlsPort: port.optional().describe('XEP-0368 direct-TLS port'),
  s2sPort: port.optional().describe('server-to-server port: kept as a fact, never used for clients'),
  host: text.optional().describe('clearnet host reached through a Tor exit when there is no onion'),
  status: z.enum(STATUSES).optional().describe('active, unverified, retired or no-onion'),
  note: text.optional().describe('what the user is told about this entry'),
  source: text.optional().describe('where the facts come from'),
  pipelining: z.boolean().optional().describe("false: send <starttls/> only after the server's features, for a server that refuses it sent with the stream header"),
  https: z.strictObject({
    hosts: z.array(text).optional().describe('names of its HTTPS services besides the domain itself, e.g. the HTTP upload host'),
    ports: z.array(port).min(1).describe("its HTTPS ports besides 443 (e.g. Prosody's 5281): TLS only at the SOCKS door, and sent to the entry's onion when it has one"),
  }).optional().describe("the entry's HTTPS services (HTTP upload, host-meta): at the SOCKS door, TLS only; to the onion when there is one"),
});

/** An onions.json file: entries keyed by XMPP domain, and an optional "$schema" for editors. */
export const MAP_SCHEMA = z.object({ $schema: z.string().optional() }).catchall(ENTRY_SCHEMA);

const FIELDS = Object.keys(ENTRY_SCHEMA.shape);
const PORTS = new Set(['port', 'directTlsPort', 's2sPort']);

/**
 * Parses a JSON map: an object keyed by XMPP domain. Collects every problem, each naming
 * the file and the domain, and throws them together so a user fixes the file in one pass.
 */
export function parseMapJson(text: string, file: string): MapEntry[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new MapFileError(file, [`not valid JSON (${(error as Error).message})`]);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new MapFileError(file, ['expected a JSON object keyed by XMPP domain']);
  }
  const problems: string[] = [];
  const entries: MapEntry[] = [];
  const seen = new Set<string>();
  for (const [key, value] of Object.entries(data)) {
    if (key === '$schema' && typeof value === 'string') continue;
    const entryProblems: string[] = [];
    const entry = parseEntry(key, value, file, entryProblems);
    problems.push(...entryProblems.map((problem) => `${key}: ${problem}`));
    if (!entry) continue;
    if (seen.has(entry.domain)) {
      problems.push(`${key}: the domain ${entry.domain} appears more than once`);
      continue;
    }
    seen.add(entry.domain);
    entries.push(entry);
  }
  if (problems.length > 0) throw new MapFileError(file, problems);
  return entries;
}

export function readMapFile(file: string): MapEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new MapFileError(file, [`cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`]);
  }
  return parseMapJson(text, file);
}

function parseEntry(key: string, value: unknown, origin: string, problems: string[]): MapEntry | undefined {
  const problem = (text: string): void => {
    problems.push(text);
  };
  const domain = normalizeDomain(key);
  if (!domain.ok) {
    problem(`not a usable XMPP domain: ${domain.problem}`);
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problem('expected an object such as {"onion": "….onion", "port": 5222}');
    return undefined;
  }
  const parsed = ENTRY_SCHEMA.safeParse(value);
  if (!parsed.success) {
    for (const line of schemaProblems(parsed.error, value, (issue, field) => fieldProblem(issue.code, field, (value as Record<string, unknown>)[field]))) {
      problem(line);
    }
    return undefined;
  }
  const fields = parsed.data;
  const { onion, host, note, source } = fields;
  let validOnion: string | undefined;
  if (onion !== undefined) {
    const checked = validateOnion(onion);
    if (checked.ok) validOnion = checked.onion;
    else problem(checked.problem);
  }
  if (host !== undefined && net.isIP(host) === 0) {
    const checked = normalizeDomain(host);
    if (!checked.ok) problem(`host "${host}" is not usable: ${checked.problem}`);
  }
  const httpsHosts: string[] = [];
  for (const name of fields.https?.hosts ?? []) {
    const checked = normalizeDomain(name);
    if (checked.ok) httpsHosts.push(checked.domain);
    else problem(`https host "${name}" is not usable: ${checked.problem}`);
  }
  const status: EntryStatus = fields.status ?? (onion !== undefined ? 'active' : 'no-onion');
  if ((status === 'active' || status === 'unverified') && onion === undefined) {
    problem(`status "${status}" needs an "onion"`);
  }
  if (problems.length > 0) return undefined;
  return {
    domain: domain.domain,
    ...(validOnion ? { onion: validOnion } : {}),
    port: fields.port ?? DEFAULT_CLIENT_PORT,
    ...(fields.directTlsPort !== undefined ? { directTlsPort: fields.directTlsPort } : {}),
    ...(fields.s2sPort !== undefined ? { s2sPort: fields.s2sPort } : {}),
    ...(host !== undefined ? { host: host.toLowerCase().replace(/\.$/, '') } : {}),
    status,
    ...(note !== undefined ? { note } : {}),
    ...(source !== undefined ? { source } : {}),
    ...(fields.pipelining !== undefined ? { pipelining: fields.pipelining } : {}),
    ...(fields.https ? { https: { hosts: httpsHosts, ports: fields.https.ports } } : {}),
    origin,
  };
}

/** The map's own words for a field the schema refused. */
function fieldProblem(code: string, field: string, value: unknown): string {
  if (code === 'unrecognized_keys') return `unknown field "${field}" (known: ${FIELDS.join(', ')})`;
  if (field === 'status') return `status must be one of ${STATUSES.join(', ')}`;
  if (PORTS.has(field)) return `"${field}" must be a whole number from 1 to 65535 (got ${JSON.stringify(value)})`;
  return `"${field}" must be a non-empty string`;
}
