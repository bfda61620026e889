#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { UsageError } from '../common/errors.js';
import { buildDaemonConfig, DEFAULTS, type DaemonOptions } from './daemon-config.js';
import { EXIT } from './exit-codes.js';
import { addSubcommands } from './subcommands.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('xmpp-onion-proxy')
    .description('Loopback XMPP proxy: routes through Tor (to onion services where known) and refuses every stream that does not negotiate STARTTLS.')
    .version(version, '-V, --version')
    .option('--listen <host:port>', `connect-server door (loopback only) [${DEFAULTS.listen}]`)
    .option('--socks <host:port>', 'SOCKS5 door (loopback only; off unless given; e.g. 127.0.0.1:9055)')
    .option('--socks-allow-other-ports', 'at the SOCKS door, pass ports other than XMPP\'s and HTTPS through Tor untouched')
    .option('--allow-remote', 'allow a non-loopback --listen or --socks address')
    .option('--tor <host:port|unix:path>', `Tor's SOCKS5 port [${DEFAULTS.tor}]`)
    .option('--map <file>', 'JSON map of routes layered over the bundled map')
    .option('--onion-only', 'refuse domains that have no onion service instead of using a Tor exit')
    .option('--no-pipelining', 'send the stream header only once Tor connected, and <starttls/> only after the server\'s features')
    .addOption(new Option('--isolation <mode>', `Tor circuit isolation [${DEFAULTS.isolation}]`).choices(['per-connection', 'per-domain', 'none']))
    .option('--max-connections <n>', 'connections open at once [half of what the open-file limit leaves]')
    .option('--header-timeout <seconds>', `time for a client to send its stream header [${DEFAULTS.headerTimeout}]`)
    .option('--negotiation-timeout <seconds>', `time from the header to <proceed/>, Tor included [${DEFAULTS.negotiationTimeout}]`)
    .option('--connect-timeout <seconds>', `time for Tor to connect (onions can take long) [${DEFAULTS.connectTimeout}]`)
    .option('--pre-tls-bytes <n>', `bytes each side may send before TLS [${DEFAULTS.preTlsBytes}]`)
    .option('--pre-tls-memory <MiB>', `memory all connections still setting up TLS may hold; past it, new ones are refused [${DEFAULTS.preTlsMemory}]`)
    .option('--log-level <level>', `fatal, error, warn, info, debug, trace or silent [${DEFAULTS.logLevel}]`)
    .option('--control <path>', 'control socket for status, monitor and reload [$RUNTIME_DIRECTORY/control.sock under systemd, else $XDG_RUNTIME_DIR/xmpp-onion-proxy/control.sock]')
    .option('--no-control', 'no control socket')
    .option('--config <file>', 'JSON file with any of these options (camelCase names)')
    .action(async (options: DaemonOptions) => {
      const { takeInheritedListeners } = await import('../proxy/socket-activation.js');
      const config = buildDaemonConfig(options, process.env, takeInheritedListeners());
      const { runDaemon } = await import('./run-daemon.js');
      process.exitCode = await runDaemon(config);
    });
  addSubcommands(program);
  program.exitOverride();
  return program;
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`xmpp-onion-proxy: ${error.message}\n`);
      process.exitCode = EXIT.usage;
      return;
    }
    process.stderr.write(`xmpp-onion-proxy: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = EXIT.failure;
  }
}

// A reader that stops early (`xmpp-onion-proxy --help | head`) is not an error. The daemon's log
// does not go through process.stdout, so this never hides a daemon failure.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(EXIT.ok);
});

await main(process.argv);
