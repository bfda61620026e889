import { Command } from 'commander';
import type { TorControlTarget } from '../deploy/doctor/check-tor-bootstrap.js';
import { parseDoorAddress } from '../deploy/doors.js';
import { isLoopback, parseEndpoint } from '../common/endpoint.js';
import { UsageError } from '../common/errors.js';
import { DEFAULTS, readConfigFile, type DaemonOptions } from './daemon-config.js';
import { runDeployStep } from './deploy-step.js';
import { EXIT } from './exit-codes.js';
import { defaultPurpleDir } from './pidgin-command.js';

interface DoctorFlags {
  config?: string;
  tor?: string;
  torControl?: string;
  torControlPasswordFile?: string;
  listen?: string;
  socks?: string;
  map?: string;
  purpleDir: string;
  profanityDir?: string;
}

/** `xmpp-onion-proxy doctor`: loaded only when asked for. */
export function buildDoctorProgram(): Command {
  const program = new Command('doctor')
    .name('xmpp-onion-proxy doctor')
    .description('Check what the daemon and your XMPP clients (Pidgin, Profanity, Poezio; Gajim and Dino when found) need, with ✓ or ✗ and a fix for each ✗. Give it the options you give the daemon.')
    .option('--config <file>', "the daemon's --config file (its tor, listen, socks and map are checked)")
    .option('--tor <host:port|unix:path>', `Tor's SOCKS port [${DEFAULTS.tor}]`)
    .option('--tor-control <host:port>', "Tor's ControlPort on this machine: also check that Tor has bootstrapped")
    .option('--tor-control-password-file <file>', 'a file holding the control password (torrc: HashedControlPassword); never printed')
    .option('--listen <host:port>', `the connect-server door [${DEFAULTS.listen}]`)
    .option('--socks <host:port>', 'the SOCKS door, if the daemon opens one')
    .option('--map <file>', 'the JSON map the daemon is given')
    .option('--purple-dir <dir>', "Pidgin's settings folder", defaultPurpleDir())
    .option('--profanity-dir <dir>', "Profanity's data folder (default: $XDG_DATA_HOME/profanity)")
    .addHelpText('after', '\nExit codes: 0 every check passed, 1 something to fix, 2 usage.')
    .action((flags: DoctorFlags) => runDeployStep(async () => {
      const file: DaemonOptions = flags.config ? readConfigFile(flags.config) : {};
      const pick = (flag: string | undefined, fromFile: string | undefined): string | undefined => flag ?? fromFile;
      const tor = parseEndpoint(pick(flags.tor, file.tor) ?? DEFAULTS.tor, '--tor', { unix: true });
      const torControl = parseTorControl(flags.torControl, flags.torControlPasswordFile);
      const connectDoor = parseDoorAddress('connect-server', pick(flags.listen, file.listen) ?? DEFAULTS.listen, '--listen');
      const socks = pick(flags.socks, file.socks);
      const map = pick(flags.map, file.map);
      const [{ runDoctor }, { formatCheckLines }] = await Promise.all([import('../deploy/doctor/doctor.js'), import('../deploy/check-line.js')]);
      const lines = await runDoctor({
        tor,
        ...(torControl !== undefined ? { torControl } : {}),
        connectDoor,
        ...(socks !== undefined ? { socksDoor: parseDoorAddress('socks', socks, '--socks') } : {}),
        ...(map !== undefined ? { mapFile: map } : {}),
        purpleDir: flags.purpleDir,
        ...(flags.profanityDir !== undefined ? { profanityDir: flags.profanityDir } : {}),
      });
      const failed = lines.filter((line) => line.status === 'fail').length;
      process.stdout.write(formatCheckLines(lines));
      process.stdout.write(failed === 0 ? 'All checks passed.\n' : `${failed} problem${failed === 1 ? '' : 's'}: see the fix under each ✗.\n`);
      return failed === 0 ? EXIT.ok : EXIT.failure;
    }));
  program.exitOverride();
  return program;
}

/** The control port must be on this machine: the password goes to it in clear. */
function parseTorControl(address: string | undefined, passwordFile: string | undefined): TorControlTarget | undefined {
  if (address === undefined) {
    if (passwordFile !== undefined) throw new UsageError('--tor-control-password-file needs --tor-control');
    return undefined;
  }
  const endpoint = parseEndpoint(address, '--tor-control');
  if (endpoint.kind !== 'tcp') throw new UsageError('--tor-control: expected HOST:PORT');
  if (!isLoopback(endpoint.host)) throw new UsageError(`--tor-control: ${endpoint.host} is not this machine (127.0.0.1 or ::1): the password would cross the network in clear`);
  return { endpoint, ...(passwordFile !== undefined ? { passwordFile } : {}) };
}

export async function runDoctor(args: readonly string[]): Promise<void> {
  await buildDoctorProgram().parseAsync([...args], { from: 'user' });
}
