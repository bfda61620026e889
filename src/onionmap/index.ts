export { normalizeDomain, type DomainResult } from './domain.js';
export { validateOnion, onionFromPublicKey, type OnionResult } from './onion-address.js';
export { STATUSES, DEFAULT_CLIENT_PORT, type EntryStatus, type MapEntry } from './entry.js';
export { OnionMap } from './onion-map.js';
export { decideRoute, type Route, type RouteDecision, type RouteOptions, type RouteReason } from './route.js';
export { parseMapJson, readMapFile, MapFileError } from './map-file.js';
export { formatMapJson } from './map-file-writer.js';
export { loadBundledMap, BUNDLED_MAP_PATH } from './bundled.js';
export { loadOnionMap, loadLayeredMap, type LoadedMap, type MapSources } from './load.js';
export {
  resolveMapLayers, layerPresent, SYSTEM_MAP_FILE, SYSTEM_MAP_ENV, USER_MAP_ENV,
  type LayerKind, type LayerOptions, type MapLayer,
} from './map-layers.js';
export { parseOnionsTable, type LuaOnionsTable, type RawLuaEntry } from './lua-onions-table.js';
export { importOnionsMap, readOnionsMapFile, type ImportReport, type ImportedEntry, type ImportSkip, type ImportNote } from './lua-import.js';
