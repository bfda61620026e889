import { tokenizeLua, type LuaToken } from './lua-tokens.js';

/** One `["domain"] = …` entry as written, before any validation. */
export interface RawLuaEntry {
  readonly line: number;
  readonly key: string;
  readonly form: 'string' | 'table';
  /** The onion: the string value, or the table's `host`. */
  readonly host?: string;
  readonly port?: { readonly text: string; readonly quoted: boolean };
  readonly otherFields: readonly string[];
}

export interface LuaTableProblem {
  readonly line: number;
  readonly problem: string;
}

export interface LuaOnionsTable {
  readonly entries: readonly RawLuaEntry[];
  /** Entries that could not be read; reading went on at the next entry. */
  readonly malformed: readonly LuaTableProblem[];
  /** Things Lua itself would reject but whose meaning is clear (a missing separator). */
  readonly warnings: readonly LuaTableProblem[];
  /** Set when there is no table to read at all, or it is never closed. */
  readonly fileProblem?: string;
}

type Step<T> = { ok: true; value: T; next: number } | { ok: false; problem: string; at: number };

/**
 * Reads the `onions_map = { … }` table of a Prosody configuration (or a file that is just that
 * table) without running any Lua. The grammar is exactly Prosody's two entry forms:
 * `["d"] = "x.onion"` and `["d"] = { host = "x.onion", port = 5269 }`, separated by `;` or `,`.
 * A bad entry is reported with its line and skipped; the rest is still read.
 */
export function parseOnionsTable(text: string): LuaOnionsTable {
  const tokens = tokenizeLua(text);
  const start = findTable(tokens);
  if (start === undefined) {
    return { entries: [], malformed: [], warnings: [], fileProblem: 'no `onions_map = { … }` table was found' };
  }
  return new TableReader(tokens).read(start);
}

/** The last `onions_map = {` (later assignments win in Lua), else a file that starts with `{` or `return {`. */
function findTable(tokens: readonly LuaToken[]): number | undefined {
  let found: number | undefined;
  for (let i = 0; i + 2 < tokens.length; i++) {
    if (tokens[i]?.type === 'name' && tokens[i]?.value === 'onions_map' && isPunct(tokens[i + 1], '=') && isPunct(tokens[i + 2], '{')) found = i + 2;
  }
  if (found !== undefined) return found;
  if (isPunct(tokens[0], '{')) return 0;
  if (tokens[0]?.type === 'name' && tokens[0].value === 'return' && isPunct(tokens[1], '{')) return 1;
  return undefined;
}

function isPunct(token: LuaToken | undefined, value: string): boolean {
  return token?.type === 'punct' && token.value === value;
}

function isSeparator(token: LuaToken | undefined): boolean {
  return isPunct(token, ';') || isPunct(token, ',');
}

function describe(token: LuaToken | undefined): string {
  if (!token || token.type === 'eof') return 'the end of the file';
  if (token.type === 'string') return 'a string';
  if (token.type === 'bad') return token.value;
  return `"${token.value}"`;
}

class TableReader {
  readonly #tokens: readonly LuaToken[];
  readonly #entries: RawLuaEntry[] = [];
  readonly #malformed: LuaTableProblem[] = [];
  readonly #warnings: LuaTableProblem[] = [];

  constructor(tokens: readonly LuaToken[]) {
    this.#tokens = tokens;
  }

  #at(i: number): LuaToken {
    return this.#tokens[i] ?? this.#tokens[this.#tokens.length - 1] as LuaToken;
  }

  read(open: number): LuaOnionsTable {
    const openLine = this.#at(open).line;
    let i = open + 1;
    let fileProblem: string | undefined;
    for (;;) {
      const token = this.#at(i);
      if (isPunct(token, '}')) break;
      if (token.type === 'eof') {
        fileProblem = `the table opened on line ${openLine} is never closed`;
        break;
      }
      const entry = this.#entry(i);
      if (!entry.ok) {
        this.#fail(i, entry.at, entry.problem);
        i = this.#recover(Math.max(entry.at, i + 1));
        continue;
      }
      const after = this.#at(entry.next);
      if (isSeparator(after)) {
        this.#entries.push(entry.value);
        i = entry.next + 1;
      } else if (isPunct(after, '}')) {
        this.#entries.push(entry.value);
        i = entry.next;
      } else if (isPunct(after, '[') && after.line > this.#at(entry.next - 1).line) {
        // The original nickcalyx map had such lines: the meaning is clear, but Lua refuses the file.
        this.#entries.push(entry.value);
        this.#warnings.push({ line: entry.value.line, problem: 'no ";" or "," after this entry (Lua itself would reject the file)' });
        i = entry.next;
      } else {
        this.#fail(i, entry.next, `unexpected ${describe(after)} after the entry`);
        i = this.#recover(entry.next);
      }
    }
    return {
      entries: this.#entries,
      malformed: this.#malformed,
      warnings: this.#warnings,
      ...(fileProblem !== undefined ? { fileProblem } : {}),
    };
  }

  #fail(start: number, at: number, problem: string): void {
    const line = this.#at(start).line;
    const where = this.#at(at).line;
    this.#malformed.push({ line, problem: where !== line && this.#at(at).type !== 'eof' ? `${problem} (on line ${where})` : problem });
  }

  /** Skips to the next entry: past a separator at this level, or to a `[` that starts a line, or to the closing `}`. */
  #recover(from: number): number {
    let depth = 0;
    for (let j = from; ; j++) {
      const token = this.#at(j);
      if (token.type === 'eof') return j;
      if (isPunct(token, '{')) depth++;
      else if (isPunct(token, '}')) {
        if (depth === 0) return j;
        depth--;
      } else if (depth === 0 && isSeparator(token)) return j + 1;
      else if (depth === 0 && isPunct(token, '[') && j > 0 && this.#at(j - 1).line < token.line) return j;
    }
  }

  #entry(i: number): Step<RawLuaEntry> {
    const line = this.#at(i).line;
    const key = this.#key(i);
    if (!key.ok) return key;
    let j = key.next;
    if (!isPunct(this.#at(j), '=')) return { ok: false, problem: `expected "=" after the key, found ${describe(this.#at(j))}`, at: j };
    j++;
    const value = this.#at(j);
    if (value.type === 'string') {
      return { ok: true, value: { line, key: key.value, form: 'string', host: value.value, otherFields: [] }, next: j + 1 };
    }
    if (isPunct(value, '{')) {
      const fields = this.#fields(j + 1);
      if (!fields.ok) return fields;
      const { host, port, other } = fields.value;
      return {
        ok: true,
        value: { line, key: key.value, form: 'table', ...(host !== undefined ? { host } : {}), ...(port ? { port } : {}), otherFields: other },
        next: fields.next,
      };
    }
    return { ok: false, problem: `expected a string or a { host = …, port = … } table as the value, found ${describe(value)}`, at: j };
  }

  /** `["domain"]`; a bare name is valid Lua too, though no real domain can be written that way. */
  #key(i: number): Step<string> {
    const token = this.#at(i);
    if (token.type === 'name') return { ok: true, value: token.value, next: i + 1 };
    if (!isPunct(token, '[')) return { ok: false, problem: `expected an entry such as ["example.org"] = "….onion", found ${describe(token)}`, at: i };
    const key = this.#at(i + 1);
    if (key.type !== 'string') return { ok: false, problem: `expected a quoted domain inside [ ], found ${describe(key)}`, at: i + 1 };
    if (!isPunct(this.#at(i + 2), ']')) return { ok: false, problem: `expected "]" after the domain, found ${describe(this.#at(i + 2))}`, at: i + 2 };
    return { ok: true, value: key.value, next: i + 3 };
  }

  #fields(i: number): Step<{ host?: string; port?: { text: string; quoted: boolean }; other: string[] }> {
    let host: string | undefined;
    let port: { text: string; quoted: boolean } | undefined;
    const other: string[] = [];
    let j = i;
    for (;;) {
      if (isPunct(this.#at(j), '}')) return { ok: true, value: { ...(host !== undefined ? { host } : {}), ...(port ? { port } : {}), other }, next: j + 1 };
      const name = this.#key(j);
      if (!name.ok) return { ok: false, problem: `inside { }: ${name.problem.replace(/an entry such as .*?,/, 'a field such as host = "….onion",')}`, at: name.at };
      j = name.next;
      if (!isPunct(this.#at(j), '=')) return { ok: false, problem: `expected "=" after ${name.value}, found ${describe(this.#at(j))}`, at: j };
      const value = this.#at(j + 1);
      if (value.type !== 'string' && value.type !== 'number') {
        return { ok: false, problem: `expected a string or a number for ${name.value}, found ${describe(value)}`, at: j + 1 };
      }
      if (name.value === 'host') host = value.value;
      else if (name.value === 'port') port = { text: value.value, quoted: value.type === 'string' };
      else other.push(name.value);
      j += 2;
      if (isSeparator(this.#at(j))) j++;
      else if (!isPunct(this.#at(j), '}')) return { ok: false, problem: `expected "," or "}" inside { }, found ${describe(this.#at(j))}`, at: j };
    }
  }
}
