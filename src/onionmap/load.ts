import type { MapEntry } from './entry.js';
import { loadBundledMap } from './bundled.js';
import { readMapFile } from './map-file.js';
import { OnionMap } from './onion-map.js';

export interface MapSources {
  /** Files layered over the bundled map, lowest priority first; each must be valid. */
  readonly files: readonly string[];
}

/** The bundled map with each file layered over it. Throws MapFileError naming the file, domain and problem. */
export function loadOnionMap(sources: MapSources): OnionMap {
  const layers: MapEntry[][] = [loadBundledMap()];
  for (const file of sources.files) layers.push(readMapFile(file));
  return OnionMap.layered(layers);
}
