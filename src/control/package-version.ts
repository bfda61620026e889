import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** The daemon's version from package.json (dist/control/ and src/control/ are both two levels down). */
export function packageVersion(): string {
  cached ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return cached;
}
