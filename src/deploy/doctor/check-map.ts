import { loadLayeredMap } from '../../onionmap/load.js';
import { MapFileError } from '../../common/errors.js';
import { resolveMapLayers } from '../../onionmap/map-layers.js';
import type { CheckLine } from '../check-line.js';

/** The onion map exactly as the daemon would load it: the bundled map, /etc, the user's file, --map. */
export function checkMap(mapFile: string | undefined, env: NodeJS.ProcessEnv = process.env): CheckLine {
  try {
    const { map, used } = loadLayeredMap({ layers: resolveMapLayers({ mapFile, env }) });
    return { status: 'ok', text: `onion map: ${map.size} entries (${used.join(', ')})` };
  } catch (error) {
    if (!(error instanceof MapFileError)) throw error;
    return {
      status: 'fail',
      text: `invalid map ${error.message}`,
      fix: `correct ${error.file} (\`xmpp-onion-proxy onionmap verify ${error.file}\` lists every problem); the daemon refuses to start with it`,
    };
  }
}
