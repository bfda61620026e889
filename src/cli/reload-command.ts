import { connectFromFlags, controlProgram, runControlStep, type ControlFlags } from './control-shared.js';
import { EXIT } from './exit-codes.js';

interface ReloadFlags extends ControlFlags {
  json?: boolean;
}

/** `xmpp-onion-proxy reload`: the daemon reads its map files again (as on SIGHUP) and says how it went. */
export async function runReload(args: readonly string[]): Promise<void> {
  const program = controlProgram('reload', 'Ask the running daemon to read its map files again, as SIGHUP does. Open connections keep their route; a bad file keeps the previous map.')
    .option('--json', 'print the daemon\'s answer as JSON')
    .addHelpText('after', '\nExit codes: 0 reloaded, 1 the reload failed (the previous map stays) or the daemon could not be reached, 2 usage.')
    .action((flags: ReloadFlags) => runControlStep(async () => {
      const client = await connectFromFlags(flags);
      try {
        client.send({ type: 'reload' });
        const result = await client.next('reload');
        if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        if (result.ok) {
          if (!flags.json) process.stdout.write(`map reloaded: generation ${result.generation}, ${result.entries} entries (layers: ${result.layers.join(', ')})\n`);
          return EXIT.ok;
        }
        if (!flags.json) {
          process.stderr.write(`xmpp-onion-proxy: map reload failed; the daemon keeps generation ${result.generation} (${result.entries} entries): ${result.error.message}\n`);
        }
        return EXIT.failure;
      } finally {
        client.close();
      }
    }));
  await program.parseAsync([...args], { from: 'user' });
}
