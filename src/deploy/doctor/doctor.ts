import type { Endpoint } from '../../common/endpoint.js';
import type { CheckLine } from '../check-line.js';
import type { DoorAddress } from '../doors.js';
import { checkNodeVersion } from '../node-version.js';
import { checkDoor } from './check-door.js';
import { checkMap } from './check-map.js';
import { checkPidgin } from './check-pidgin.js';
import { checkPoezio, checkProfanity, checkUnreadClients, clientFolders } from './check-clients.js';
import { checkTor } from './check-tor.js';
import { checkTorBootstrap, type TorControlTarget } from './check-tor-bootstrap.js';

export interface DoctorOptions {
  readonly tor: Endpoint;
  /** Tor's control port, when given: asked whether Tor has bootstrapped. */
  readonly torControl?: TorControlTarget;
  readonly connectDoor: DoorAddress;
  /** Undefined when the daemon's SOCKS door is off. */
  readonly socksDoor?: DoorAddress;
  readonly mapFile?: string;
  readonly purpleDir: string;
  /** Profanity's data folder (default: from the environment, as Profanity finds it). */
  readonly profanityDir?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly procRoot?: string;
  readonly nodeVersion?: string;
}

/** Every check, in the order a user would fix things: Node.js, Tor, the doors, the map, then each client found. */
export async function runDoctor(options: DoctorOptions): Promise<CheckLine[]> {
  const procRoot = options.procRoot !== undefined ? { procRoot: options.procRoot } : {};
  const lines: CheckLine[] = [checkNodeVersion(options.nodeVersion), await checkTor(options.tor, options.socksDoor)];
  if (options.torControl) lines.push(await checkTorBootstrap(options.torControl));
  lines.push(await checkDoor(options.connectDoor, { ...procRoot, flag: '--listen' }));
  if (options.socksDoor) lines.push(await checkDoor(options.socksDoor, { ...procRoot, flag: '--socks' }));
  else lines.push({ status: 'skip', text: 'the SOCKS door is off (no --socks): only the connect-server door is checked' });
  lines.push(checkMap(options.mapFile, options.env));
  lines.push(...checkPidgin(options.purpleDir, options.connectDoor, options.socksDoor));
  const folders = clientFolders(options.env);
  lines.push(...checkProfanity(options.profanityDir ?? folders.profanity, options.connectDoor));
  lines.push(...checkPoezio(folders.poezio, options.connectDoor));
  lines.push(...checkUnreadClients(folders));
  return lines;
}
