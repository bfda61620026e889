import { Command } from 'commander';

/**
 * `xmpp-onion-proxy onionmap …`: tools for the map of XMPP domains to onion services.
 * main.ts hands everything after `onionmap` here, so none of this is loaded when the daemon
 * starts; each subcommand loads its own module when it runs.
 */
export function buildOnionmapProgram(): Command {
  const program = new Command('onionmap')
    .name('xmpp-onion-proxy onionmap')
    .description('Show, check and update the map of XMPP domains to onion services.')
    .addHelpText('after', `
Layers, lowest first: the bundled map, /etc/xmpp-onion-proxy/onions.json,
$XDG_CONFIG_HOME/xmpp-onion-proxy/onions.json (or ~/.config/…), then --map FILE.
XMPP_ONION_PROXY_SYSTEM_MAP and XMPP_ONION_PROXY_USER_MAP override the first two paths
(an empty value leaves the layer out).
Exit codes: 0 ok, 1 refused, failed or problems found, 2 usage.`);
  program.exitOverride();

  program.command('list')
    .description('table of every entry: domain, onion, port, status, source')
    .option('--json', 'print the entries as JSON')
    .option('--map <file>', 'JSON map layered over the others')
    .action(async (options: { json?: boolean; map?: string }) => {
      const { listCommand } = await import('./onionmap-list.js');
      process.exitCode = listCommand(options);
    });

  program.command('lookup')
    .description('the route the daemon would take for DOMAIN, and why (exit 0 routable, 1 refused)')
    .argument('<domain>', 'an XMPP domain, e.g. the part of your JID after the @')
    .option('--onion-only', 'as the daemon with --onion-only: never through a Tor exit')
    .option('--map <file>', 'JSON map layered over the others')
    .action(async (domain: string, options: { onionOnly?: boolean; map?: string }) => {
      const { lookupCommand } = await import('./onionmap-lookup.js');
      process.exitCode = lookupCommand(domain, options);
    });

  program.command('verify')
    .description('validate a JSON map file; lists every problem (exit 1 if any)')
    .argument('<file>')
    .action(async (file: string) => {
      const { verifyCommand } = await import('./onionmap-verify.js');
      process.exitCode = verifyCommand(file);
    });

  program.command('import')
    .description("convert the operators' Prosody onions_map (Lua, never executed) into a JSON map")
    .argument('<file.lua>')
    .option('--out <file.json>', 'write the JSON map here (default: standard output, report on standard error)')
    .option('--keep-stale', 'keep entries that the bundled map marks retired (or whose onion it knows is dead)')
    .action(async (file: string, options: { out?: string; keepStale?: boolean }) => {
      const { importCommand } = await import('./onionmap-import.js');
      process.exitCode = importCommand(file, options);
    });

  program.command('check')
    .description('through Tor, see whether each routable entry speaks XMPP and offers STARTTLS (exit 0 if all alive)')
    .argument('[domains...]', 'domains to check (default: every routable entry)')
    .option('--tor <host:port|unix:path>', "Tor's SOCKS5 port", '127.0.0.1:9050')
    .option('--timeout <seconds>', 'time allowed for each entry, Tor included', '60')
    .option('--parallel <n>', 'entries checked at once', '4')
    .option('--map <file>', 'JSON map layered over the others')
    .option('--json', 'print the results as JSON')
    .action(async (domains: string[], options: { tor: string; timeout: string; parallel: string; map?: string; json?: boolean }) => {
      const { checkCommand } = await import('./onionmap-check.js');
      process.exitCode = await checkCommand(domains, options);
    });

  return program;
}

export async function runOnionmap(args: readonly string[]): Promise<void> {
  await buildOnionmapProgram().parseAsync([...args], { from: 'user' });
}
