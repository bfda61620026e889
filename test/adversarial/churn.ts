// Churn: 10,000 connections against one in-process daemon, 100 at a time, each with a random
// fault (client resets at any stage, plaintext auth, garbage, idling, hostile or resetting
// upstreams, SOCKS failures, a retired domain, early FIN) or none (fake and real TLS relays),
// while Tor "crashes" (every stream reset) now and then. Afterwards file descriptors, sockets,
// timers and heap must be back near their baseline, and nothing may have thrown or rejected
// unhandled. Each operation's outcome is checked too (the right stream error, or the echo).
import { readdirSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import t from 'tap';
import { createTestCa, issueServerCert } from '../helpers/certs.js';
import { startTestDaemon } from '../helpers/daemon.js';
import { drawOp, OP_WEIGHTS, runOp, startLeanUpstream, type OpKind, type UpstreamKind } from '../helpers/adversary-churn.js';
import { startLeanSocks } from '../helpers/adversary-socks.js';
import { startTorSwitch } from '../helpers/adversary-tor.js';

const TOTAL = Number(process.env.CHURN_CONNECTIONS ?? 10_000);
const CONCURRENCY = 100;
const CRASH_EVERY = 2500;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const uncaught: unknown[] = [];
const onUncaught = (error: unknown): void => {
  uncaught.push(error);
};
process.on('uncaughtException', onUncaught);
process.on('unhandledRejection', onUncaught);
t.teardown(() => {
  process.removeListener('uncaughtException', onUncaught);
  process.removeListener('unhandledRejection', onUncaught);
});

const ca = await createTestCa('churn test CA');
const leaf = await issueServerCert(ca, ['tls.test']);
const pki = { key: leaf.keyPem, cert: leaf.certPem };
const kinds: Array<[string, UpstreamKind]> = [['fake.test', 'fake-tls'], ['tls.test', 'real-tls'], ['strip.test', 'strip'], ['inject.test', 'inject'], ['reset.test', 'reset'], ['garbage.test', 'garbage']];
const upstreams = new Map<string, number>();
const closers: Array<{ open(): number; close(): Promise<void> }> = [];
for (const [domain, kind] of kinds) {
  const upstream = await startLeanUpstream(kind, pki);
  closers.push(upstream);
  upstreams.set(`xmpp.${domain}`, upstream.port);
}
t.teardown(() => Promise.all(closers.map((c) => c.close())));
const socks = await startLeanSocks((host) => upstreams.get(host));
t.teardown(() => socks.close());
const tor = await startTorSwitch(socks.port);
t.teardown(() => tor.close());
const daemon = await startTestDaemon(t, tor.port, [
  ...kinds.map(([domain]) => ({ domain, host: `xmpp.${domain}` })),
  { domain: 'nowhere.test', host: 'xmpp.nowhere.test' },
  { domain: 'retired.test', host: 'xmpp.retired.test', status: 'retired' as const, note: 'retired.test retired its XMPP service' },
], { maxConnections: 1000, headerTimeoutMs: 400, negotiationTimeoutMs: 3000, connectTimeoutMs: 3000, lingerMs: 300 });

const fds = (): number => readdirSync('/proc/self/fd').length;
const resources = (kind: string): number => process.getActiveResourcesInfo().filter((r) => r === kind).length;

/** Bounded wait for everything to close: daemon sessions, Tor streams, upstream sockets. */
async function settle(timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const busy = (): boolean => daemon.proxy.connections > 0 || tor.open > 0 || socks.open() > 0 || closers.some((c) => c.open() > 0);
  while (busy() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  // Sockets closed by the peer are released on the next turns of the loop.
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

function measure(): { fds: number; sockets: number; timers: number; heap: number } {
  gc();
  gc();
  return { fds: fds(), sockets: resources('TCPSocketWrap'), timers: resources('Timeout'), heap: process.memoryUsage().heapUsed };
}

async function churn(count: number, crashEvery: number): Promise<{ failures: string[]; counts: Map<OpKind, number>; crashes: number }> {
  const failures: string[] = [];
  const counts = new Map<OpKind, number>();
  let next = 0;
  let epoch = 0;
  let crashes = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const n = next++;
      if (crashEvery > 0 && n > 0 && n % crashEvery === 0) {
        tor.resetAll();
        epoch++;
        crashes++;
      }
      const kind = drawOp();
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
      const started = epoch;
      const verdict = await runOp(daemon.port, kind, ca.certPem, 10_000);
      // An operation in flight while Tor crashed under it may end any clean way; never hang.
      if (verdict && (epoch === started || verdict.includes('not closed within'))) failures.push(verdict);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { failures, counts, crashes };
}

t.test(`${TOTAL} connections with random faults: every outcome right, resources back to baseline`, async (t) => {
  // Warm-up: every code path once (lazy modules, TLS contexts, pino children), then the baseline.
  const warm = await churn(400, 0);
  t.same(warm.failures, [], 'warm-up: every operation ended as the policy demands');
  await settle();
  const baseline = measure();
  const started = Date.now();
  // Two halves: the second half's heap growth, beyond the log sink's, is what a per-connection leak would show.
  const first = await churn(TOTAL / 2, CRASH_EVERY);
  await settle();
  const middle = measure();
  const logMiddle = daemon.rawLogs().length;
  const second = await churn(TOTAL / 2, CRASH_EVERY);
  const elapsed = Date.now() - started;
  const failures = [...first.failures, ...second.failures];
  const counts = new Map(OP_WEIGHTS.map(([kind]) => [kind, (first.counts.get(kind) ?? 0) + (second.counts.get(kind) ?? 0)] as const));
  const crashes = first.crashes + second.crashes;
  t.comment(`${TOTAL} connections in ${elapsed} ms; ${crashes} Tor crashes; ${[...counts].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  t.same(failures.slice(0, 20), [], `every operation ended as the policy demands (${failures.length} did not)`);
  t.ok([...counts.values()].every((n) => n > 0), 'every kind of fault was drawn');
  t.ok(crashes >= 2, `Tor crashed under open connections ${crashes} times`);
  await settle();
  t.equal(daemon.proxy.connections, 0, 'no session left');
  t.equal(tor.open, 0, 'no stream to Tor left');
  t.equal(socks.open(), 0, 'no socket left in the SOCKS server');
  t.same(closers.map((c) => c.open()), closers.map(() => 0), 'no upstream socket left');
  const after = measure();
  const logGrowth = daemon.rawLogs().length - logMiddle;
  t.comment(`baseline ${JSON.stringify(baseline)}; middle ${JSON.stringify(middle)}; after ${JSON.stringify(after)}; log grew ${logGrowth} bytes in the second half`);
  t.ok(after.fds <= baseline.fds + 3, `file descriptors back to baseline (${baseline.fds} → ${after.fds})`);
  t.ok(after.sockets <= baseline.sockets + 2, `sockets back to baseline (${baseline.sockets} → ${after.sockets})`);
  t.ok(after.timers <= baseline.timers + 3, `timers back to baseline (${baseline.timers} → ${after.timers})`);
  // The in-memory log sink keeps every line; beyond that, the heap must not grow with connections.
  const growth = after.heap - middle.heap;
  t.ok(growth <= logGrowth * 2 + 8 * 1024 * 1024,
    `heap flat over the second ${TOTAL / 2} connections (${(growth / 1e6).toFixed(1)} MB, of which the log sink ${(logGrowth / 1e6).toFixed(1)} MB)`);
  t.same(uncaught.map(String), [], 'no uncaught exception or unhandled rejection');
});
