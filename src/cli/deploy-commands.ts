import type { Command } from 'commander';

type Runner = (args: readonly string[]) => Promise<void>;

const COMMANDS: ReadonlyArray<readonly [name: string, description: string, load: () => Promise<Runner>]> = [
  ['doctor', 'check Node.js, Tor, the doors, the map files and Pidgin; a fix for each problem (see doctor --help)', async () => (await import('./doctor-command.js')).runDoctor],
  ['pidgin', 'set Pidgin\'s XMPP accounts to use the daemon, encryption required (see pidgin configure --help)', async () => (await import('./pidgin-command.js')).runPidgin],
  ['tails', 'on Tails: start the daemon at every login from Persistent Storage and set Pidgin (see tails setup --help)', async () => (await import('./tails-command.js')).runTails],
];

/**
 * The commands that put the daemon where users run it. Everything after the command's name goes
 * to its own module, loaded only then, so the daemon's start-up never loads any of it.
 */
export function addDeployCommands(program: Command): void {
  for (const [name, description, load] of COMMANDS) {
    program.command(name)
      .description(description)
      .argument('[args...]')
      .helpOption(false)
      .allowUnknownOption()
      .allowExcessArguments()
      .passThroughOptions()
      .action(async (args: string[]) => {
        await (await load())(args);
      });
  }
}
