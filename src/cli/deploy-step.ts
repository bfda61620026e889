import { DeployError } from '../deploy/deploy-error.js';
import { EXIT } from './exit-codes.js';

/**
 * Runs one deployment command and sets the exit code: its own, or 1 with the message alone when
 * a step cannot go on (DeployError: the message already says what to do). Usage errors and
 * anything unexpected go on to main(), which prints them.
 */
export async function runDeployStep(step: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await step();
  } catch (error) {
    if (!(error instanceof DeployError)) throw error;
    process.stderr.write(`xmpp-onion-proxy: ${error.message}\n`);
    process.exitCode = EXIT.failure;
  }
}
