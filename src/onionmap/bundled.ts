import { fileURLToPath } from 'node:url';
import { readMapFile } from './map-file.js';
import type { MapEntry } from './entry.js';

/** `data/onions.json` at the package root; the same depth from src/onionmap and dist/onionmap. */
export const BUNDLED_MAP_PATH = fileURLToPath(new URL('../../data/onions.json', import.meta.url));

export function loadBundledMap(): MapEntry[] {
  return readMapFile(BUNDLED_MAP_PATH).map((entry) => ({ ...entry, origin: 'bundled' }));
}
