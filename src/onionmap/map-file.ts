import { readFileSync } from 'node:fs';
import { MapFileError } from '../common/errors.js';
import net from 'node:net';
import { DEFAULT_CLIENT_PORT, STATUSES, type EntryStatus, type MapEntry } from './entry.js';
import { normalizeDomain } from './domain.js';
import { validateOnion } from './onion-address.js';

const FIELDS = new Set(['onion', 'port', 'directTlsPort', 's2sPort', 'host', 'status', 'note', 'source']);

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
  const fields = value as Record<string, unknown>;
  for (const field of Object.keys(fields)) {
    if (!FIELDS.has(field)) problem(`unknown field "${field}" (known: ${[...FIELDS].join(', ')})`);
  }
  const onion = optionalString(fields, 'onion', problem);
  const host = optionalString(fields, 'host', problem);
  const note = optionalString(fields, 'note', problem);
  const source = optionalString(fields, 'source', problem);
  const port = optionalPort(fields, 'port', problem) ?? DEFAULT_CLIENT_PORT;
  const directTlsPort = optionalPort(fields, 'directTlsPort', problem);
  const s2sPort = optionalPort(fields, 's2sPort', problem);
  let status: EntryStatus | undefined;
  if (fields.status !== undefined) {
    if (typeof fields.status === 'string' && (STATUSES as readonly string[]).includes(fields.status)) {
      status = fields.status as EntryStatus;
    } else {
      problem(`status must be one of ${STATUSES.join(', ')}`);
    }
  }
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
  status ??= onion !== undefined ? 'active' : 'no-onion';
  if ((status === 'active' || status === 'unverified') && onion === undefined) {
    problem(`status "${status}" needs an "onion"`);
  }
  if (problems.length > 0) return undefined;
  return {
    domain: domain.domain,
    ...(validOnion ? { onion: validOnion } : {}),
    port,
    ...(directTlsPort !== undefined ? { directTlsPort } : {}),
    ...(s2sPort !== undefined ? { s2sPort } : {}),
    ...(host !== undefined ? { host: host.toLowerCase().replace(/\.$/, '') } : {}),
    status,
    ...(note !== undefined ? { note } : {}),
    ...(source !== undefined ? { source } : {}),
    origin,
  };
}

function optionalString(fields: Record<string, unknown>, name: string, problem: (text: string) => void): string | undefined {
  const value = fields[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) {
    problem(`"${name}" must be a non-empty string`);
    return undefined;
  }
  return value;
}

function optionalPort(fields: Record<string, unknown>, name: string, problem: (text: string) => void): number | undefined {
  const value = fields[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    problem(`"${name}" must be a whole number from 1 to 65535 (got ${JSON.stringify(value)})`);
    return undefined;
  }
  return value;
}
