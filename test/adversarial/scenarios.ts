// The adversarial runner: every scenario on real sockets and real TLS, against a fresh
// in-process daemon logging at trace into memory. A scenario is a violation when any of its
// assertions fails (what the victim got, what the attacker got back, every session closed,
// no secret in the log). Ends with one summary line on stdout.
import t from 'tap';
import { settleArena, startArena } from '../helpers/adversary-arena.js';
import type { Scenario } from '../helpers/adversary-scenario.js';
import { clientScenarios } from '../helpers/adversary-scenarios-client.js';
import { faultScenarios } from '../helpers/adversary-scenarios-faults.js';
import { memoryScenarios } from '../helpers/adversary-scenarios-memory.js';
import { nameScenarios } from '../helpers/adversary-scenarios-names.js';
import { resourceScenarios } from '../helpers/adversary-scenarios-resources.js';
import { serverScenarios } from '../helpers/adversary-scenarios-server.js';
import { socksScenarios } from '../helpers/adversary-scenarios-socks.js';
import { tlsStartScenarios } from '../helpers/adversary-scenarios-tls-start.js';

const scenarios: Scenario[] = [...serverScenarios, ...clientScenarios, ...faultScenarios, ...resourceScenarios, ...socksScenarios, ...nameScenarios, ...tlsStartScenarios, ...memoryScenarios];
const only = process.env.ADVERSARIAL_ONLY;
const selected = only ? scenarios.filter((s) => `${s.group}: ${s.name}`.includes(only)) : scenarios;

const violations: string[] = [];
const uncaught: unknown[] = [];
const onUncaught = (error: unknown): void => {
  uncaught.push(error);
};
process.on('uncaughtException', onUncaught);
process.on('unhandledRejection', onUncaught);

let ran = 0;
for (const scenario of selected) {
  const results = await t.test(`${scenario.group}: ${scenario.name}`, async (t) => {
    const arena = await startArena(t, scenario.arena);
    await scenario.run(t, arena);
    await settleArena(t, arena);
  });
  ran++;
  if (!results?.ok) violations.push(scenario.name);
}

t.test('no uncaught exception or unhandled rejection during the scenarios', async (t) => {
  t.same(uncaught.map(String), []);
});

t.teardown(() => {
  process.removeListener('uncaughtException', onUncaught);
  process.removeListener('unhandledRejection', onUncaught);
  console.log(`adversarial: ${ran} scenarios, ${violations.length} violations${violations.length ? ` (${violations.join('; ')})` : ''}`);
});
