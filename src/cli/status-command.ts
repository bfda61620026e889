import { formatStatus } from '../control/format.js';
import { connectFromFlags, controlProgram, runControlStep, type ControlFlags } from './control-shared.js';
import { EXIT } from './exit-codes.js';

interface StatusFlags extends ControlFlags {
  json?: boolean;
  domains?: boolean;
}

/** `xmpp-onion-proxy status`: one snapshot from the running daemon, as a table or as JSON. */
export async function runStatus(args: readonly string[]): Promise<void> {
  const program = controlProgram('status', 'Print what the running daemon is doing: counters, open connections and recent refusals.')
    .option('--json', 'print the snapshot as JSON (one object; see docs/control.md)')
    .option('--domains', 'show the domain of each open connection (left out by default)')
    .addHelpText('after', '\nExit codes: 0 the daemon answered, 1 it could not be reached, 2 usage.')
    .action((flags: StatusFlags) => runControlStep(async () => {
      const client = await connectFromFlags(flags);
      try {
        client.send({ type: 'snapshot', domains: flags.domains === true });
        const snapshot = await client.next('snapshot');
        process.stdout.write(flags.json ? `${JSON.stringify(snapshot, null, 2)}\n` : formatStatus(snapshot));
        return EXIT.ok;
      } finally {
        client.close();
      }
    }));
  await program.parseAsync([...args], { from: 'user' });
}
