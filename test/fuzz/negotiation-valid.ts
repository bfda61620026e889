// Property: every valid negotiation (any header style, attribute order, quoting, prefixes,
// entities and astral characters, pipelining, whitespace, a pipelined ClientHello), under any
// chunking and either connect timing, relays, and each side gets exactly the canonical bytes.
import fc from 'fast-check';
import t from 'tap';
import { chunkingArb, drive, runs, validTranscriptArb, violations } from '../helpers/adversary-fuzz.js';

const numRuns = runs(25_000);

t.test(`${numRuns} valid transcripts under random chunkings`, async (t) => {
  const started = Date.now();
  fc.assert(
    fc.property(validTranscriptArb, chunkingArb, fc.boolean(), (valid, sizes, lateConnect) => {
      const run = drive(valid.steps, sizes, { lateConnect });
      const broken = violations(run);
      if (broken.length > 0) throw new Error(broken.join('; '));
      if (run.phase !== 'Relaying') throw new Error(`not relaying: ${run.phase} ${run.toClient}`);
      const toServer = Buffer.concat([run.toServer, run.preamble ?? Buffer.alloc(0)]);
      if (!toServer.equals(valid.expectToServer)) throw new Error(`to the server: ${JSON.stringify(toServer.toString('latin1'))} instead of ${JSON.stringify(valid.expectToServer.toString('latin1'))}`);
      if (run.toClient !== valid.expectToClient) throw new Error(`to the client: ${JSON.stringify(run.toClient)} instead of ${JSON.stringify(valid.expectToClient)}`);
    }),
    { numRuns },
  );
  t.pass(`${numRuns} cases in ${Date.now() - started} ms`);
});
