import { loadLayeredMap, type LoadedMap } from '../onionmap/load.js';
import { MapFileError } from '../common/errors.js';
import { resolveMapLayers } from '../onionmap/map-layers.js';
import type { MapEntry } from '../onionmap/entry.js';
import { UsageError } from '../common/errors.js';

/** The map exactly as the daemon would load it with the same --map and environment. */
export function loadCliMap(mapFile: string | undefined): LoadedMap {
  try {
    return loadLayeredMap({ layers: resolveMapLayers({ mapFile, env: process.env }) });
  } catch (error) {
    if (error instanceof MapFileError) throw new UsageError(`invalid map ${error.message}`);
    throw error;
  }
}

export function describeOrigin(entry: MapEntry): string {
  return entry.origin === 'bundled' ? 'the bundled map' : entry.origin;
}

/** Plain columns, padded to the widest cell; the last column is never padded. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n') + '\n';
}
