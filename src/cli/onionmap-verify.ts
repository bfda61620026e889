import { STATUSES } from '../onionmap/entry.js';
import { MapFileError } from '../common/errors.js';
import { readMapFile } from '../onionmap/map-file.js';
import { EXIT } from './exit-codes.js';

/** Every problem on its own line, each naming the file, the domain and the problem, so one pass fixes them all. */
export function verifyCommand(file: string): number {
  try {
    const entries = readMapFile(file);
    const counts = STATUSES.map((status) => `${entries.filter((e) => e.status === status).length} ${status}`).join(', ');
    process.stdout.write(`${file}: valid, ${entries.length} entries (${counts})\n`);
    return EXIT.ok;
  } catch (error) {
    if (!(error instanceof MapFileError)) throw error;
    for (const problem of error.problems) process.stdout.write(`${file}: ${problem}\n`);
    process.stdout.write(`${file}: ${error.problems.length} problem${error.problems.length === 1 ? '' : 's'}; the daemon would refuse to start with this file\n`);
    return EXIT.failure;
  }
}
