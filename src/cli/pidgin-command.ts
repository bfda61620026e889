import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { DEFAULT_DOORS, DOOR_KINDS, parseDoorAddress, type DoorKind } from '../deploy/doors.js';
import { runDeployStep } from './deploy-step.js';

export interface PidginConfigureFlags {
  account?: string;
  door: DoorKind;
  purpleDir: string;
  socks: string;
  listen: string;
  dryRun?: boolean;
}

export function defaultPurpleDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.HOME || os.homedir(), '.purple');
}

/** `xmpp-onion-proxy pidgin …`: loaded only when asked for (main.ts hands everything after `pidgin` here). */
export function buildPidginProgram(): Command {
  const program = new Command('pidgin')
    .name('xmpp-onion-proxy pidgin')
    .description('Set Pidgin (and finch: the same libpurple settings) to reach XMPP only through this daemon.')
    .addHelpText('after', '\nExit codes: 0 done (or nothing to change), 1 could not (Pidgin running, no such account, …), 2 usage.');
  program.exitOverride();
  addPidginConfigure(program.command('configure'));
  return program;
}

/** The options and action of `pidgin configure`, also `configure pidgin`. */
export function addPidginConfigure(command: Command): Command {
  return command
    .description("set the XMPP accounts in accounts.xml for one of the daemon's doors, with connection security \"require encryption\"; keeps a backup")
    .option('--account <jid>', 'only this XMPP account (default: every XMPP account)')
    .addOption(new Option('--door <door>', 'socks: Pidgin uses the daemon as its Tor proxy (certificate checked against your domain); connect-server: Pidgin connects to 127.0.0.1').choices(DOOR_KINDS).default('socks'))
    .option('--purple-dir <dir>', "libpurple's settings folder", defaultPurpleDir())
    .option('--socks <host:port>', "the daemon's SOCKS door", DEFAULT_DOORS.socks)
    .option('--listen <host:port>', "the daemon's connect-server door", DEFAULT_DOORS['connect-server'])
    .option('--dry-run', 'print what would change; write nothing')
    .action((flags: PidginConfigureFlags) => runDeployStep(async () => {
      const door = flags.door === 'socks' ? parseDoorAddress('socks', flags.socks, '--socks') : parseDoorAddress('connect-server', flags.listen, '--listen');
      const { configurePidgin, formatPidginReport } = await import('../deploy/pidgin-configure.js');
      const report = configurePidgin({ purpleDir: flags.purpleDir, door, ...(flags.account !== undefined ? { account: flags.account } : {}), dryRun: flags.dryRun === true });
      process.stdout.write(formatPidginReport(report, flags.dryRun === true));
      return 0;
    }));
}

export async function runPidgin(args: readonly string[]): Promise<void> {
  await buildPidginProgram().parseAsync([...args], { from: 'user' });
}
