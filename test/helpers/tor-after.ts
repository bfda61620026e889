/**
 * tap global `after` script: stops the run's shared private Tor network (see
 * tor-shared.ts), by the pids recorded when it was started, and removes its
 * folder. tap runs it as a direct child of its runner process, like the test
 * files, so `process.ppid` names the run.
 */
import { stopSharedTorNetwork } from './tor-shared.js';

try {
  await stopSharedTorNetwork(process.ppid);
} catch (err) {
  console.error(`tor-after: could not stop the shared Tor network: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
}
