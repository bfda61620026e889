export { normalizeDomain, type DomainResult } from './domain.js';
export { validateOnion, onionFromPublicKey, type OnionResult } from './onion-address.js';
export { STATUSES, DEFAULT_CLIENT_PORT, type EntryStatus, type MapEntry } from './entry.js';
export { OnionMap } from './onion-map.js';
export { decideRoute, type Route, type RouteDecision, type RouteOptions, type RouteReason } from './route.js';
export { parseMapJson, readMapFile, MapFileError } from './map-file.js';
export { loadBundledMap, BUNDLED_MAP_PATH } from './bundled.js';
export { loadOnionMap, type MapSources } from './load.js';
