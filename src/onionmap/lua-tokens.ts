/**
 * A tokenizer for the part of Lua 5.x that Prosody configuration files use around an
 * `onions_map` table: names, strings, numbers, punctuation and comments. It never evaluates
 * anything; characters it does not know become `bad` tokens so the parser can report the line.
 */
export type LuaToken =
  | { readonly type: 'name'; readonly value: string; readonly line: number }
  | { readonly type: 'string'; readonly value: string; readonly line: number }
  | { readonly type: 'number'; readonly value: string; readonly line: number }
  | { readonly type: 'punct'; readonly value: string; readonly line: number }
  | { readonly type: 'bad'; readonly value: string; readonly line: number }
  | { readonly type: 'eof'; readonly value: ''; readonly line: number };

/** Longest first, so `..` and `==` are one token each (they only matter outside the table). */
const PUNCTUATION = ['...', '..', '==', '~=', '<=', '>=', '::', '//', '<<', '>>', '{', '}', '[', ']', '(', ')', '=', ';', ',', '.', ':', '+', '-', '*', '/', '%', '^', '#', '<', '>', '&', '~', '|'];
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER = /0[xX][0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?/y;
const LONG_OPEN = /\[(=*)\[/y;
const SIMPLE_ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', f: '\f', v: '\v', '\\': '\\', '"': '"', "'": "'", '\n': '\n' };

export function tokenizeLua(text: string): LuaToken[] {
  const tokens: LuaToken[] = [];
  let at = 0;
  let line = 1;
  const countLines = (from: number, to: number): void => {
    for (let i = from; i < to; i++) if (text.charCodeAt(i) === 10) line++;
  };
  while (at < text.length) {
    const c = text[at] as string;
    if (c === '\n') {
      line++;
      at++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') {
      at++;
      continue;
    }
    if (text.startsWith('--', at)) {
      LONG_OPEN.lastIndex = at + 2;
      const long = LONG_OPEN.exec(text);
      if (long) {
        const close = `]${long[1]}]`;
        const end = text.indexOf(close, LONG_OPEN.lastIndex);
        const stop = end < 0 ? text.length : end + close.length;
        countLines(at, stop);
        at = stop;
      } else {
        const end = text.indexOf('\n', at);
        at = end < 0 ? text.length : end;
      }
      continue;
    }
    const start = line;
    LONG_OPEN.lastIndex = at;
    const long = LONG_OPEN.exec(text);
    if (long) {
      const close = `]${long[1]}]`;
      const bodyStart = LONG_OPEN.lastIndex;
      const end = text.indexOf(close, bodyStart);
      if (end < 0) {
        tokens.push({ type: 'bad', value: 'a long string that never ends', line: start });
        countLines(at, text.length);
        at = text.length;
        continue;
      }
      // Lua drops a newline right after the opening bracket.
      const body = text.slice(bodyStart, end).replace(/^\r?\n/, '');
      tokens.push({ type: 'string', value: body, line: start });
      countLines(at, end + close.length);
      at = end + close.length;
      continue;
    }
    if (c === '"' || c === "'") {
      const read = readQuoted(text, at);
      tokens.push(read.ok ? { type: 'string', value: read.value, line: start } : { type: 'bad', value: read.problem, line: start });
      countLines(at, read.end);
      at = read.end;
      continue;
    }
    NUMBER.lastIndex = at;
    const number = NUMBER.exec(text);
    if (number) {
      tokens.push({ type: 'number', value: number[0], line: start });
      at = NUMBER.lastIndex;
      continue;
    }
    NAME.lastIndex = at;
    const name = NAME.exec(text);
    if (name) {
      tokens.push({ type: 'name', value: name[0], line: start });
      at = NAME.lastIndex;
      continue;
    }
    const punct = PUNCTUATION.find((p) => text.startsWith(p, at));
    if (punct) {
      tokens.push({ type: 'punct', value: punct, line: start });
      at += punct.length;
      continue;
    }
    tokens.push({ type: 'bad', value: `the character ${JSON.stringify(c)}`, line: start });
    at++;
  }
  tokens.push({ type: 'eof', value: '', line });
  return tokens;
}

type Quoted = { ok: true; value: string; end: number } | { ok: false; problem: string; end: number };

/** A short string ('…' or "…"); like Lua, an unescaped line break ends it with an error. */
function readQuoted(text: string, start: number): Quoted {
  const quote = text[start];
  let value = '';
  let at = start + 1;
  while (at < text.length) {
    const c = text[at] as string;
    if (c === quote) return { ok: true, value, end: at + 1 };
    if (c === '\n') return { ok: false, problem: 'a string that is not closed on its line', end: at };
    if (c === '\\') {
      const next = text[at + 1] ?? '';
      const simple = SIMPLE_ESCAPES[next];
      if (simple !== undefined) {
        value += simple;
        at += 2;
        continue;
      }
      const digits = /^[0-9]{1,3}/.exec(text.slice(at + 1, at + 4));
      if (digits && Number(digits[0]) <= 255) {
        value += String.fromCharCode(Number(digits[0]));
        at += 1 + digits[0].length;
        continue;
      }
      return { ok: false, problem: `an unknown escape \\${next} in a string`, end: skipToLineEnd(text, at) };
    }
    value += c;
    at++;
  }
  return { ok: false, problem: 'a string that is not closed before the end of the file', end: text.length };
}

function skipToLineEnd(text: string, at: number): number {
  const end = text.indexOf('\n', at);
  return end < 0 ? text.length : end;
}
