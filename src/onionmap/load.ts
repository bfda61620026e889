import type { MapEntry } from './entry.js';
import { loadBundledMap } from './bundled.js';
import { layerPresent, type LayerKind, type MapLayer } from './map-layers.js';
import { readMapFile } from './map-file.js';
import { OnionMap } from './onion-map.js';

export interface MapSources {
  /** Layers over the bundled map, lowest priority first (see resolveMapLayers). */
  readonly layers?: readonly MapLayer[];
  /** Further files over those layers, lowest priority first; each must exist and be valid. */
  readonly files?: readonly string[];
}

export interface LoadedMap {
  readonly map: OnionMap;
  /** The layers that were read, "bundled" first: for logs and `onionmap list`. */
  readonly used: readonly ('bundled' | LayerKind)[];
}

/**
 * The bundled map with each present layer over it; a later layer replaces a domain's entry whole.
 * All or nothing: the first invalid file throws MapFileError (naming the file, each domain and problem),
 * so a caller that already has a map keeps it.
 */
export function loadLayeredMap(sources: MapSources): LoadedMap {
  const layers: MapEntry[][] = [loadBundledMap()];
  const used: ('bundled' | LayerKind)[] = ['bundled'];
  const all: MapLayer[] = [...(sources.layers ?? []), ...(sources.files ?? []).map((file) => ({ kind: 'map' as const, file, optional: false }))];
  for (const layer of all) {
    if (!layerPresent(layer)) continue;
    layers.push(readMapFile(layer.file));
    used.push(layer.kind);
  }
  return { map: OnionMap.layered(layers), used };
}

/** The bundled map with the given layers and files over it. Throws MapFileError naming the file, domain and problem. */
export function loadOnionMap(sources: MapSources): OnionMap {
  return loadLayeredMap(sources).map;
}
