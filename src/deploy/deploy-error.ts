import { ProxyError } from '../common/errors.js';

/**
 * A deployment step that cannot go on (a file that is not what it should be, a client still
 * running, a Persistent Storage feature turned off): the message says what to do, and the
 * command exits 1. Never carries file contents, passwords or other secrets.
 */
export class DeployError extends ProxyError {}
