import type { Command } from 'commander';

type Runner = (args: readonly string[]) => Promise<void>;

/**
 * Every subcommand, each in its own module loaded only when it runs: the daemon's start-up
 * loads none of them. Everything after the name goes to the module, which parses it.
 */
const SUBCOMMANDS: ReadonlyArray<readonly [name: string, description: string, load: () => Promise<Runner>]> = [
  ['onionmap', 'list, look up, verify, import and check the onion map (see onionmap --help)', async () => (await import('./onionmap-command.js')).runOnionmap],
  ['status', 'what the running daemon is doing: counters, open connections, recent refusals (see status --help)', async () => (await import('./status-command.js')).runStatus],
  ['monitor', 'live view of the running daemon; q or Ctrl-C to quit (see monitor --help)', async () => (await import('./monitor-command.js')).runMonitor],
  ['reload', 'ask the running daemon to read its map files again, as SIGHUP does (see reload --help)', async () => (await import('./reload-command.js')).runReload],
  ['doctor', 'check Node.js, Tor, the doors, the map files and your XMPP clients; a fix for each problem (see doctor --help)', async () => (await import('./doctor-command.js')).runDoctor],
  ['configure', 'set a client (pidgin, profanity) to use the daemon, or print the settings (gajim, poezio, dino) (see configure --help)', async () => (await import('./configure-command.js')).runConfigure],
  ['pidgin', 'set Pidgin\'s XMPP accounts to use the daemon, encryption required (the same as configure pidgin)', async () => (await import('./pidgin-command.js')).runPidgin],
  ['tails', 'on Tails: start the daemon at every login from Persistent Storage and set Pidgin (see tails setup --help)', async () => (await import('./tails-command.js')).runTails],
];

export function addSubcommands(program: Command): void {
  program.enablePositionalOptions();
  for (const [name, description, load] of SUBCOMMANDS) {
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
