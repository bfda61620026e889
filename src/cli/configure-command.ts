import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { CLIENT_SETTINGS, formatClientSettings, type ClientName } from '../deploy/client-settings.js';
import { DEFAULT_DOORS, parseDoorAddress } from '../deploy/doors.js';
import { runDeployStep } from './deploy-step.js';
import { addPidginConfigure } from './pidgin-command.js';

/** Profanity's data folder: $XDG_DATA_HOME/profanity, else ~/.local/share/profanity. */
export function defaultProfanityDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_DATA_HOME || path.join(env.HOME || os.homedir(), '.local', 'share'), 'profanity');
}

interface ProfanityFlags {
  account?: string;
  dataDir: string;
  listen: string;
  dryRun?: boolean;
}

/** `xmpp-onion-proxy configure <client>`: loaded only when asked for. */
export function buildConfigureProgram(): Command {
  const program = new Command('configure')
    .name('xmpp-onion-proxy configure')
    .description('Set an XMPP client to reach its server only through this daemon, encryption required. Pidgin and Profanity: their settings files are written (the client closed; a backup kept). Gajim, Poezio, Dino: the settings to make are printed.')
    .addHelpText('after', '\nExit codes: 0 done (or nothing to change), 1 could not (client running, no such account, …), 2 usage.');
  program.exitOverride();
  addPidginConfigure(program.command('pidgin'));
  program.command('profanity')
    .description('set Profanity\'s accounts for the connect-server door: server, port and "tls force"; keeps a backup')
    .option('--account <name>', 'only this account (its name or JID; default: every account)')
    .option('--data-dir <dir>', "Profanity's data folder, holding its accounts file", defaultProfanityDir())
    .option('--listen <host:port>', "the daemon's connect-server door", DEFAULT_DOORS['connect-server'])
    .option('--dry-run', 'print what would change; write nothing')
    .action((flags: ProfanityFlags) => runDeployStep(async () => {
      const door = parseDoorAddress('connect-server', flags.listen, '--listen');
      const { configureProfanity, formatProfanityReport } = await import('../deploy/profanity-configure.js');
      const report = configureProfanity({ dataDir: flags.dataDir, door, ...(flags.account !== undefined ? { account: flags.account } : {}), dryRun: flags.dryRun === true });
      process.stdout.write(formatProfanityReport(report, flags.dryRun === true));
      return 0;
    }));
  for (const name of Object.keys(CLIENT_SETTINGS) as ClientName[]) {
    program.command(name)
      .description(`print the settings to make in ${CLIENT_SETTINGS[name].title}`)
      .option('--socks <host:port>', "the daemon's SOCKS door", DEFAULT_DOORS.socks)
      .option('--listen <host:port>', "the daemon's connect-server door", DEFAULT_DOORS['connect-server'])
      .action((flags: { socks: string; listen: string }) => runDeployStep(async () => {
        const socks = parseDoorAddress('socks', flags.socks, '--socks');
        const listen = parseDoorAddress('connect-server', flags.listen, '--listen');
        process.stdout.write(formatClientSettings(name, { socks, listen }));
        return 0;
      }));
  }
  return program;
}

export async function runConfigure(args: readonly string[]): Promise<void> {
  await buildConfigureProgram().parseAsync([...args], { from: 'user' });
}
