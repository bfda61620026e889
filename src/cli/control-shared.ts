import { Command } from 'commander';
import { ControlClient, ControlClientError, chooseControlPath } from '../control/control-client.js';
import { UsageError } from '../common/errors.js';
import { readConfigFile } from './daemon-config.js';
import { EXIT } from './exit-codes.js';

export interface ControlFlags {
  control?: string;
  config?: string;
}

/** A control command's program with the options every one of them takes. */
export function controlProgram(name: string, description: string): Command {
  return new Command(name)
    .name(`xmpp-onion-proxy ${name}`)
    .description(description)
    .option('--control <path>', 'the daemon\'s control socket [$XDG_RUNTIME_DIR/xmpp-onion-proxy/control.sock, then /run/xmpp-onion-proxy/control.sock]')
    .option('--config <file>', 'the daemon\'s --config file (its "control" path is used)')
    .exitOverride();
}

/** Connects to the socket the flags (or the daemon's config file, or the defaults) name. */
export async function connectFromFlags(flags: ControlFlags): Promise<ControlClient> {
  let path = flags.control;
  if (path === undefined && flags.config !== undefined) {
    const configured = readConfigFile(flags.config).control;
    if (configured === false) throw new UsageError(`--config ${flags.config}: the daemon runs without a control socket ("control": false)`);
    path = configured;
  }
  return ControlClient.connect(chooseControlPath(path));
}

/** Runs a control command and sets the exit code: its own, or 1 with the message when the daemon cannot be reached. */
export async function runControlStep(step: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await step();
  } catch (error) {
    if (!(error instanceof ControlClientError)) throw error;
    process.stderr.write(`xmpp-onion-proxy: ${error.message}\n`);
    process.exitCode = EXIT.failure;
  }
}
