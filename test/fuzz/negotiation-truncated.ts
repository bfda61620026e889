// Properties over truncated transcripts (a valid negotiation cut at any byte, then a timeout or
// an EOF) and over fragment soup (attack fragments from both sides in any order): the invariants
// of test/helpers/adversary-fuzz.ts hold, and a cut negotiation relays only if the whole
// <proceed/> arrived.
import fc from 'fast-check';
import t from 'tap';
import { chunkingArb, drive, runs, soupTranscriptArb, truncatedTranscriptArb, violations } from '../helpers/adversary-fuzz.js';

const truncatedRuns = runs(20_000);
const soupRuns = runs(15_000);

t.test(`${truncatedRuns} truncated transcripts under random chunkings`, async (t) => {
  const started = Date.now();
  fc.assert(
    fc.property(truncatedTranscriptArb, chunkingArb, fc.boolean(), ({ steps, proceedComplete }, sizes, lateConnect) => {
      const run = drive(steps, sizes, { lateConnect, final: 'timeout' });
      const broken = violations(run, { decided: true });
      if (broken.length > 0) throw new Error(broken.join('; '));
      if (run.phase === 'Relaying' && !proceedComplete) throw new Error('relaying without a complete <proceed/>');
      if (proceedComplete && run.phase !== 'Relaying') throw new Error(`a complete negotiation did not relay: ${run.phase} ${run.toClient}`);
    }),
    { numRuns: truncatedRuns },
  );
  t.pass(`${truncatedRuns} cases in ${Date.now() - started} ms`);
});

t.test(`${soupRuns} fragment soups under random chunkings`, async (t) => {
  const started = Date.now();
  fc.assert(
    fc.property(soupTranscriptArb, chunkingArb, fc.boolean(), (steps, sizes, lateConnect) => {
      const run = drive(steps, sizes, { lateConnect, final: 'timeout' });
      const broken = violations(run, { decided: true });
      if (broken.length > 0) throw new Error(broken.join('; '));
    }),
    { numRuns: soupRuns },
  );
  t.pass(`${soupRuns} cases in ${Date.now() - started} ms`);
});
