import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CheckLine } from '../check-line.js';
import { CLIENT_SETTINGS } from '../client-settings.js';
import { describeDoor, type DoorAddress } from '../doors.js';
import { KeyFile } from '../key-file.js';
import { PROFANITY_ACCOUNTS, profanityDoorSettings, readProfanityAccounts } from '../profanity-configure.js';

/** The folders where each client keeps its settings, from HOME and the XDG variables. */
export function clientFolders(env: NodeJS.ProcessEnv = process.env): { profanity: string; poezio: string; gajim: string; dino: string } {
  const home = env.HOME || os.homedir();
  const data = env.XDG_DATA_HOME || path.join(home, '.local', 'share');
  const config = env.XDG_CONFIG_HOME || path.join(home, '.config');
  return { profanity: path.join(data, 'profanity'), poezio: path.join(config, 'poezio'), gajim: path.join(data, 'gajim'), dino: path.join(data, 'dino') };
}

/** Profanity's accounts must name the connect-server door, with `tls force`. */
export function checkProfanity(dataDir: string, connectDoor: DoorAddress): CheckLine[] {
  const file = path.join(dataDir, PROFANITY_ACCOUNTS);
  if (!existsSync(file)) return [];
  let accounts: KeyFile;
  try {
    accounts = readProfanityAccounts(file);
  } catch (error) {
    return [{ status: 'fail', text: `Profanity: ${(error as Error).message}`, fix: 'run doctor as the user who runs Profanity' }];
  }
  const wanted = profanityDoorSettings(connectDoor);
  return accounts.groups().map((name): CheckLine => {
    const wrong = wanted.filter(([key, value]) => accounts.get(name, key) !== value).map(([key, value]) => `${key} is ${accounts.get(name, key) ?? '(not set)'}, not ${value}`);
    if (wrong.length === 0) return { status: 'ok', text: `Profanity ${name}: ${describeDoor(connectDoor)}, tls force` };
    return { status: 'fail', text: `Profanity ${name}: not set for ${describeDoor(connectDoor)}: ${wrong.join('; ')}`, fix: `xmpp-onion-proxy configure profanity --account ${name} --listen ${connectDoor.host}:${connectDoor.port} --data-dir ${dataDir} (with Profanity closed)` };
  });
}

/** Poezio's poezio.cfg, section [Poezio]: custom_host, custom_port, force_encryption. */
export function checkPoezio(configDir: string, connectDoor: DoorAddress): CheckLine[] {
  const file = path.join(configDir, 'poezio.cfg');
  if (!existsSync(file)) return [];
  let config: KeyFile;
  try {
    config = new KeyFile(readFileSync(file, 'utf8'));
  } catch (error) {
    return [{ status: 'fail', text: `Poezio: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})` }];
  }
  const get = (key: string): string | undefined => (config.groups().includes('Poezio') ? config.get('Poezio', key) : undefined);
  const wanted: Array<[string, string]> = [['custom_host', connectDoor.host], ['custom_port', String(connectDoor.port)], ['force_encryption', 'true']];
  const wrong = wanted.filter(([key, value]) => get(key) !== value).map(([key, value]) => `${key} is ${get(key) ?? '(not set)'}, not ${value}`);
  if (wrong.length === 0) return [{ status: 'ok', text: `Poezio: ${describeDoor(connectDoor)}, encryption forced` }];
  return [{ status: 'fail', text: `Poezio: ${file} is not set for ${describeDoor(connectDoor)}: ${wrong.join('; ')}`, fix: 'xmpp-onion-proxy configure poezio (prints the three lines for its [Poezio] section)' }];
}

/** Gajim and Dino keep settings this program does not read: a reminder, or the limit, when they are found. */
export function checkUnreadClients(folders: { gajim: string; dino: string }): CheckLine[] {
  const lines: CheckLine[] = [];
  if (existsSync(folders.gajim)) lines.push({ status: 'warn', text: 'Gajim found: its proxy setting cannot be checked from here', fix: 'xmpp-onion-proxy configure gajim (prints the settings)' });
  if (existsSync(folders.dino)) lines.push({ status: 'warn', text: `Dino found: ${CLIENT_SETTINGS.dino.why}, and it looks up your domain's SRV records through the system resolver, outside Tor`, fix: 'xmpp-onion-proxy configure dino (what works, and the limit)' });
  return lines;
}
