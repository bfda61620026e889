import { statSync } from 'node:fs';
import path from 'node:path';

/** Where a layer comes from; later kinds win over earlier ones. */
export type LayerKind = 'system' | 'user' | 'map';

export interface MapLayer {
  readonly kind: LayerKind;
  readonly file: string;
  /** Optional layers (system, user) are skipped while their file does not exist; `--map` must exist. */
  readonly optional: boolean;
}

export const SYSTEM_MAP_FILE = '/etc/xmpp-onion-proxy/onions.json';
/** Overrides the system file; an empty value turns the layer off (tests, packagers). */
export const SYSTEM_MAP_ENV = 'XMPP_ONION_PROXY_SYSTEM_MAP';
/** Overrides the user file; an empty value turns the layer off. */
export const USER_MAP_ENV = 'XMPP_ONION_PROXY_USER_MAP';

export interface LayerOptions {
  /** The `--map FILE` option, if given. */
  readonly mapFile?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * The files layered over the bundled map, lowest priority first: the system file, the user's
 * file (XDG base directory spec: `$XDG_CONFIG_HOME`, else `~/.config`), then `--map`.
 * Only paths are worked out here; whether the files exist is checked at each (re)load, so a
 * user file created later is picked up by SIGHUP.
 */
export function resolveMapLayers(options: LayerOptions = {}): MapLayer[] {
  const env = options.env ?? process.env;
  const layers: MapLayer[] = [];
  const system = env[SYSTEM_MAP_ENV] ?? SYSTEM_MAP_FILE;
  if (system !== '') layers.push({ kind: 'system', file: system, optional: true });
  const user = env[USER_MAP_ENV] ?? defaultUserFile(env);
  if (user !== undefined && user !== '') layers.push({ kind: 'user', file: user, optional: true });
  if (options.mapFile !== undefined) layers.push({ kind: 'map', file: options.mapFile, optional: false });
  return layers;
}

function defaultUserFile(env: NodeJS.ProcessEnv): string | undefined {
  // The spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
  const xdg = env.XDG_CONFIG_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : env.HOME ? path.join(env.HOME, '.config') : undefined;
  return base === undefined ? undefined : path.join(base, 'xmpp-onion-proxy', 'onions.json');
}

/** False only when an optional layer's file is simply not there; every other case is read (and may fail loudly). */
export function layerPresent(layer: MapLayer): boolean {
  if (!layer.optional) return true;
  return statSync(layer.file, { throwIfNoEntry: false }) !== undefined;
}
