// Properties over hostile transcripts: valid negotiations mutated (byte flips, spliced attack
// fragments, cuts, duplicated or swapped writes, injected timeouts, EOFs and Tor failures),
// under random chunkings. Every run keeps the invariants of test/helpers/adversary-fuzz.ts:
// no exception, exactly one decision once the timer fires, nothing but the canonical header and
// <starttls/> to the server, nothing but canonical negotiation and a final error to the client.
import fc from 'fast-check';
import t from 'tap';
import { chunkingArb, drive, mutatedTranscriptArb, runs, violations } from '../helpers/adversary-fuzz.js';

const numRuns = runs(45_000);

t.test(`${numRuns} mutated transcripts under random chunkings`, async (t) => {
  const started = Date.now();
  fc.assert(
    fc.property(mutatedTranscriptArb, chunkingArb, fc.boolean(), (steps, sizes, lateConnect) => {
      const run = drive(steps, sizes, { lateConnect, final: 'timeout' });
      const broken = violations(run, { decided: true });
      if (broken.length > 0) throw new Error(broken.join('; '));
    }),
    { numRuns },
  );
  t.pass(`${numRuns} cases in ${Date.now() - started} ms`);
});
