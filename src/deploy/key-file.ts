/**
 * A GLib key file (`[group]`, `key=value`, `#` comments), as Profanity keeps its accounts: read
 * and written line by line, so that every line not edited comes back byte for byte. Values are
 * kept as written (GLib's escapes included): the keys edited here take plain values.
 */
export class KeyFile {
  readonly #lines: string[];

  constructor(text: string) {
    this.#lines = text.split('\n');
  }

  groups(): string[] {
    return this.#lines.map(groupName).filter((name): name is string => name !== undefined);
  }

  get(group: string, key: string): string | undefined {
    const line = this.#keyLine(group, key);
    return line === undefined ? undefined : this.#lines[line]!.slice(this.#lines[line]!.indexOf('=') + 1).trim();
  }

  /** Sets a key, where it is or at the end of its group's keys. */
  set(group: string, key: string, value: string): void {
    const line = this.#keyLine(group, key);
    if (line !== undefined) {
      this.#lines[line] = `${key}=${value}`;
      return;
    }
    const [start, end] = this.#groupRange(group);
    let last = start;
    for (let i = start + 1; i < end; i++) if (this.#lines[i]!.trim() !== '') last = i;
    this.#lines.splice(last + 1, 0, `${key}=${value}`);
  }

  toString(): string {
    return this.#lines.join('\n');
  }

  #groupRange(group: string): [number, number] {
    const start = this.#lines.findIndex((line) => groupName(line) === group);
    if (start < 0) throw new Error(`no group [${group}]`);
    let end = start + 1;
    while (end < this.#lines.length && groupName(this.#lines[end]!) === undefined) end++;
    return [start, end];
  }

  #keyLine(group: string, key: string): number | undefined {
    const [start, end] = this.#groupRange(group);
    for (let i = start + 1; i < end; i++) {
      const line = this.#lines[i]!;
      if (line.trimStart().startsWith('#')) continue;
      const eq = line.indexOf('=');
      if (eq > 0 && line.slice(0, eq).trim() === key) return i;
    }
    return undefined;
  }
}

function groupName(line: string): string | undefined {
  const trimmed = line.trim();
  return trimmed.startsWith('[') && trimmed.endsWith(']') ? trimmed.slice(1, -1) : undefined;
}
