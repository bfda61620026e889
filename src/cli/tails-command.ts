import { Command, Option } from 'commander';
import { DEFAULT_DOORS, DOOR_KINDS, parseDoorAddress, type DoorKind } from '../deploy/doors.js';
import { TAILS_PERSISTENCE, TAILS_PERSISTENCE_ENV } from '../deploy/tails-layout.js';
import { runDeployStep } from './deploy-step.js';
import { EXIT } from './exit-codes.js';

interface TailsSetupFlags {
  door: DoorKind;
  purpleDir?: string;
}

/** `xmpp-onion-proxy tails …`: loaded only when asked for (main.ts hands everything after `tails` here). */
export function buildTailsProgram(): Command {
  const program = new Command('tails')
    .name('xmpp-onion-proxy tails')
    .description('Run the daemon on Tails 7 (Node.js 20) from Persistent Storage. Tails 6 (Node.js 18, end of life) is not supported.');
  program.exitOverride();
  program.command('setup')
    .description('run once with Persistent Storage unlocked: checks Dotfiles and Additional Software (nodejs), copies the daemon into the Persistent Folder, starts it at every login, sets Pidgin')
    .addOption(new Option('--door <door>', 'the door Pidgin is set for (see pidgin configure --help)').choices(DOOR_KINDS).default('socks'))
    .option('--purple-dir <dir>', "Pidgin's settings (default: the Pidgin persistence folder)")
    .addHelpText('after', `\nPersistent Storage is looked for at ${TAILS_PERSISTENCE} (or $${TAILS_PERSISTENCE_ENV}).\nRunning it again changes nothing. Exit codes: 0 set up, 1 something to fix first (printed with the fix), 2 usage.`)
    .action((flags: TailsSetupFlags) => runDeployStep(async () => {
      const [{ tailsSetup }, { tailsLayout }, { formatCheckLines }] = await Promise.all([
        import('../deploy/tails-setup.js'), import('../deploy/tails-layout.js'), import('../deploy/check-line.js'),
      ]);
      const layout = tailsLayout();
      const door = parseDoorAddress(flags.door, DEFAULT_DOORS[flags.door], '--door');
      const result = tailsSetup({ layout, door, ...(flags.purpleDir !== undefined ? { purpleDir: flags.purpleDir } : {}) });
      process.stdout.write(`xmpp-onion-proxy on Tails (Persistent Storage at ${layout.root})\n${formatCheckLines(result.lines)}`);
      if (!result.ok) {
        process.stdout.write(result.changes === 0 ? 'Nothing was changed. Fix what is marked ✗, then run this again.\n' : 'Fix what is marked ✗, then run this again (what is done stays done).\n');
        return EXIT.failure;
      }
      if (result.changes === 0) process.stdout.write('Nothing changed: already set up.\n');
      else process.stdout.write(`Done: the daemon starts at your next login. To start it now, run:\n  ${result.startCommand.join(' ')}\n`);
      return EXIT.ok;
    }));
  return program;
}

export async function runTails(args: readonly string[]): Promise<void> {
  await buildTailsProgram().parseAsync([...args], { from: 'user' });
}
