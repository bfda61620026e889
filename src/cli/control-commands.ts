import type { Command } from 'commander';

type Runner = (args: readonly string[]) => Promise<void>;

const COMMANDS: ReadonlyArray<readonly [name: string, description: string, load: () => Promise<Runner>]> = [
  ['status', 'what the running daemon is doing: counters, open connections, recent refusals (see status --help)', async () => (await import('./status-command.js')).runStatus],
  ['monitor', 'live view of the running daemon; q or Ctrl-C to quit (see monitor --help)', async () => (await import('./monitor-command.js')).runMonitor],
  ['reload', 'ask the running daemon to read its map files again, as SIGHUP does (see reload --help)', async () => (await import('./reload-command.js')).runReload],
];

/** The commands that talk to a running daemon over its control socket; each loaded only when run. */
export function addControlCommands(program: Command): void {
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
