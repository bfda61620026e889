import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { CheckLine } from '../check-line.js';
import { DEFAULT_DOORS, describeDoor, parseDoorAddress, type DoorAddress } from '../doors.js';
import { ACCOUNTS_FILE } from '../pidgin-configure.js';
import { describeChanges, doorStatus } from '../pidgin-doors.js';
import { isXmpp, listAccounts } from '../purple-accounts.js';
import { parseXml } from '../xml-tree.js';

/**
 * Each XMPP account in Pidgin's accounts.xml must be set for one of the daemon's doors, with
 * `require_tls`. `socksDoor` is undefined when the daemon's SOCKS door is off: an account set
 * for the usual SOCKS door address is then a problem of the daemon's configuration.
 */
export function checkPidgin(purpleDir: string, connectDoor: DoorAddress, socksDoor: DoorAddress | undefined): CheckLine[] {
  const file = path.join(purpleDir, ACCOUNTS_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [{ status: 'skip', text: `Pidgin: no ${file}, nothing to check` }];
    return [{ status: 'fail', text: `Pidgin: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, fix: 'run doctor as the user who runs Pidgin' }];
  }
  let accounts;
  try {
    accounts = listAccounts(parseXml(text)).filter(isXmpp);
  } catch (error) {
    return [{ status: 'fail', text: `Pidgin: ${file} cannot be read as libpurple's accounts file: ${(error as Error).message}`, fix: `restore it from a backup (${file}.*.bak) or let Pidgin write it again` }];
  }
  if (accounts.length === 0) return [{ status: 'skip', text: `Pidgin: no XMPP account in ${file}` }];
  const socksCandidate = socksDoor ?? parseDoorAddress('socks', DEFAULT_DOORS.socks, '--socks');
  return accounts.map((account): CheckLine => {
    const status = doorStatus(account, [socksCandidate, connectDoor]);
    const fixCommand = (door: DoorAddress): string =>
      `xmpp-onion-proxy pidgin configure --account ${account.name.split('/')[0]} --door ${door.kind}${door.kind === 'socks' ? ` --socks ${door.host}:${door.port}` : ` --listen ${door.host}:${door.port}`} --purple-dir ${purpleDir} (with Pidgin closed)`;
    if (status.door) {
      if (status.door.kind === 'socks' && !socksDoor) {
        return { status: 'fail', text: `Pidgin ${account.name}: set for ${describeDoor(status.door)}, but the daemon's SOCKS door is off`, fix: `start the daemon with --socks ${status.door.host}:${status.door.port} (or "socks" in its --config file)` };
      }
      return { status: 'ok', text: `Pidgin ${account.name}: ${describeDoor(status.door)}, encryption required` };
    }
    const door = status.closest ?? connectDoor;
    return { status: 'fail', text: `Pidgin ${account.name}: not set for ${describeDoor(door)}: ${describeChanges(status.missing).join('; ')}`, fix: fixCommand(door) };
  });
}
