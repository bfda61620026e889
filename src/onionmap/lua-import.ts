import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_CLIENT_PORT, type MapEntry } from './entry.js';
import { normalizeDomain } from './domain.js';
import { parseOnionsTable, type RawLuaEntry } from './lua-onions-table.js';
import { validateOnion } from './onion-address.js';

export interface ImportedEntry {
  readonly line: number;
  readonly entry: MapEntry;
}

export interface ImportSkip {
  readonly line: number;
  /** The key as written, when the line got that far. */
  readonly key?: string;
  readonly reason: string;
}

/** A defect that did not stop the entry from being imported (a string port, a missing suffix). */
export interface ImportNote {
  readonly line: number;
  readonly key?: string;
  readonly text: string;
}

export interface ImportReport {
  readonly file: string;
  readonly imported: readonly ImportedEntry[];
  readonly skipped: readonly ImportSkip[];
  readonly notes: readonly ImportNote[];
  /** Set when the file could not be read as an onions_map at all (then nothing is imported). */
  readonly problem?: string;
}

export interface ImportOptions {
  /** The import date written into each entry's source (YYYY-MM-DD); today by default. */
  readonly date?: string;
}

const PORT = /^[0-9]{1,5}$/;

/**
 * Converts a Prosody `onions_map` into map entries. Its onions were published for
 * server-to-server routing (mod_onions), so every entry is `unverified` for client logins,
 * and a port in it is kept as `s2sPort`, never as the client port.
 */
export function importOnionsMap(text: string, file: string, options: ImportOptions = {}): ImportReport {
  const table = parseOnionsTable(text);
  const date = options.date ?? new Date().toISOString().slice(0, 10);
  const name = path.basename(file);
  const skipped: ImportSkip[] = table.malformed.map((m) => ({ line: m.line, reason: `malformed entry: ${m.problem}` }));
  const notes: ImportNote[] = table.warnings.map((w) => ({ line: w.line, text: w.problem }));
  const byDomain = new Map<string, ImportedEntry>();
  for (const raw of table.entries) {
    const converted = convert(raw, file, `Prosody onions_map ${name}, line ${raw.line} (imported ${date})`);
    if (!converted.ok) {
      skipped.push({ line: raw.line, key: raw.key, reason: converted.reason });
      continue;
    }
    notes.push(...converted.notes.map((text) => ({ line: raw.line, key: raw.key, text })));
    const earlier = byDomain.get(converted.entry.domain);
    if (earlier) {
      skipped.push({ line: earlier.line, key: earlier.entry.domain, reason: `replaced by the entry for the same domain on line ${raw.line} (the later one wins, as in Lua)` });
    }
    byDomain.set(converted.entry.domain, { line: raw.line, entry: converted.entry });
  }
  return {
    file,
    imported: [...byDomain.values()].sort((a, b) => a.line - b.line),
    skipped: skipped.sort((a, b) => a.line - b.line),
    notes: notes.sort((a, b) => a.line - b.line),
    ...(table.fileProblem !== undefined ? { problem: table.fileProblem } : {}),
  };
}

export function readOnionsMapFile(file: string, options: ImportOptions = {}): ImportReport {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    return { file, imported: [], skipped: [], notes: [], problem: `cannot be read (${code})` };
  }
  return importOnionsMap(text, file, options);
}

type Converted = { ok: true; entry: MapEntry; notes: string[] } | { ok: false; reason: string };

function convert(raw: RawLuaEntry, file: string, source: string): Converted {
  const domain = normalizeDomain(raw.key);
  if (!domain.ok) return { ok: false, reason: `not a usable XMPP domain: ${domain.problem}` };
  if (raw.host === undefined) return { ok: false, reason: 'the table has no host = "….onion"' };
  const onion = validateOnion(raw.host);
  if (!onion.ok) return { ok: false, reason: onion.problem };
  const notes: string[] = [];
  const written: string[] = [];
  if (!raw.host.trim().toLowerCase().endsWith('.onion')) {
    notes.push('the onion is written without the ".onion" suffix; added');
    written.push('the file wrote the onion without the .onion suffix');
  }
  let s2sPort: number | undefined;
  if (raw.port) {
    const number = PORT.test(raw.port.text) ? Number(raw.port.text) : NaN;
    if (!(number >= 1 && number <= 65535)) {
      return { ok: false, reason: `the port ${raw.port.quoted ? JSON.stringify(raw.port.text) : raw.port.text} is not a whole number from 1 to 65535` };
    }
    s2sPort = number;
    if (raw.port.quoted) {
      notes.push(`the port is the string "${raw.port.text}"; read as the server-to-server port ${number}`);
      written.push(`the file gave port "${raw.port.text}" as a string`);
    }
  }
  for (const field of raw.otherFields) notes.push(`the field "${field}" means nothing to Prosody's onions_map; ignored`);
  const note = `imported from a Prosody onions_map, whose onions are for server-to-server traffic: not confirmed to serve clients on port ${DEFAULT_CLIENT_PORT}${written.length > 0 ? ` (${written.join('; ')})` : ''}`;
  return {
    ok: true,
    notes,
    entry: {
      domain: domain.domain,
      onion: onion.onion,
      port: DEFAULT_CLIENT_PORT,
      ...(s2sPort !== undefined ? { s2sPort } : {}),
      status: 'unverified',
      note,
      source,
      origin: file,
    },
  };
}
