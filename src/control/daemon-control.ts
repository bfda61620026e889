import type { Logger } from 'pino';
import type { Endpoint } from '../common/endpoint.js';
import { ControlServer, type ControlSource } from './control-server.js';
import { packageVersion } from './package-version.js';
import type { ReloadOutcome } from './protocol.js';
import { ControlPathError, prepareControlPath } from './socket-path.js';

export type PreparedControl = { readonly ok: true; readonly path: string | undefined } | { readonly ok: false; readonly message: string };

/**
 * Checks the control socket's place before the doors open, so a refusal stops the daemon before
 * it accepts anything. A socket another running daemon answers on is left to it: this one runs
 * without a control socket and says so.
 */
export async function prepareDaemonControl(file: string, log: Logger): Promise<PreparedControl> {
  try {
    if ((await prepareControlPath(file)) === 'ready') return { ok: true, path: file };
  } catch (error) {
    if (error instanceof ControlPathError) return { ok: false, message: error.message };
    throw error;
  }
  log.warn({ control: file }, `another daemon answers on the control socket ${file}; this one runs without one (give it --control PATH)`);
  return { ok: true, path: undefined };
}

export function startDaemonControl(file: string, source: ControlSource, tor: Endpoint, reload: () => ReloadOutcome, log: Logger): Promise<ControlServer> {
  return ControlServer.listen({ path: file, source, tor, reload, log, version: packageVersion() });
}
