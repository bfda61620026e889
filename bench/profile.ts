/**
 * `npm run bench:profile`: where the daemon's time and memory go, for the lead making the
 * relay lean. Four runs of the built daemon (a child process, through the bench's SOCKS hop):
 *   relay     --cpu-prof during bulk transfer in records mode (the relay's own cost)
 *   handshake --cpu-prof during sequential STARTTLS + TLS handshakes
 *   idle      heap snapshots (--heapsnapshot-signal) before and with N idle relayed connections:
 *             what each connection keeps, by constructor, against its RSS growth
 *   startup   --cpu-prof from spawn to listening: self time by module
 * Prints a report and writes bench/results/profile.json (profiles kept with --keep DIR).
 */
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { openConnection, type Connection } from './lib/client.js';
import { stopAllChildren, waitForLine } from './lib/processes.js';
import { CLI, daemonEnv, startDaemon, startNodePipe, type DaemonRelay, type Relay } from './lib/relays.js';
import { createRig, type RigWithEnv } from './lib/rig.js';
import { bulkOnce } from './lib/workloads.js';
import { daemonInclusive, monotonicMicros, summarizeProfile, type CpuProfile, type FunctionTime, type ProfileSummary, type Window } from './lib/cpu-profile.js';
import { spawnBench, stopChild } from './lib/processes.js';

interface Options {
  bulkBytes: number;
  handshakes: number;
  idle: number;
  keep: string | undefined;
  json: string;
}

function parse(argv: readonly string[]): Options {
  const options: Options = { bulkBytes: 512 * 1024 ** 2, handshakes: 300, idle: 1000, keep: undefined, json: 'bench/results/profile.json' };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--quick') Object.assign(options, { bulkBytes: 128 * 1024 ** 2, handshakes: 100, idle: 1000 });
    else if (arg === '--keep') options.keep = next();
    else if (arg === '--json') options.json = next();
    else if (arg === '--idle') options.idle = Number(next());
    else throw new Error(`unknown option ${arg} (--quick, --idle N, --keep DIR, --json FILE)`);
  }
  return options;
}

async function newestFile(dir: string, suffix: string): Promise<string | undefined> {
  const names = (await readdir(dir)).filter((n) => n.endsWith(suffix));
  let best: { file: string; mtime: number } | undefined;
  for (const name of names) {
    const file = path.join(dir, name);
    const { mtimeMs } = await stat(file);
    if (!best || mtimeMs > best.mtime) best = { file, mtime: mtimeMs };
  }
  return best?.file;
}

interface Span {
  readonly units: number;
  readonly cpuSeconds: number;
  readonly window: Window;
}

interface Profiled {
  readonly profile: CpuProfile;
  readonly spans: ReadonlyMap<string, Span>;
}

type Measure = (label: string, inner: () => Promise<number>) => Promise<number>;

/**
 * A daemon under --cpu-prof; `work` warms it up and calls `measure` around what counts (it
 * returns the units done there). Only samples inside those spans are summarized.
 */
async function withProfiledDaemon(rig: RigWithEnv, dir: string, work: (daemon: DaemonRelay, measure: Measure) => Promise<void>): Promise<Profiled> {
  await mkdir(dir, { recursive: true });
  const daemon = await startDaemon('daemon', rig.env, {
    nodeFlags: ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '100'],
    daemonArgs: ['--max-connections', '100000'],
  });
  const spans = new Map<string, Span>();
  await work(daemon, async (label, inner) => {
    const before = daemon.cpu();
    const from = monotonicMicros();
    const units = await inner();
    spans.set(label, { units, window: { from, to: monotonicMicros() }, cpuSeconds: daemon.cpu() - before });
    return units;
  });
  await daemon.stop();
  const file = await newestFile(dir, '.cpuprofile');
  if (!file) throw new Error(`no CPU profile in ${dir}`);
  return { profile: JSON.parse(await readFile(file, 'utf8')) as CpuProfile, spans };
}

/* ------------------------------------------------------------ heap snapshots */

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface HeapGroup {
  readonly group: string;
  readonly count: number;
  readonly bytes: number;
}

function heapGroups(snapshot: HeapSnapshot): Map<string, { count: number; bytes: number }> {
  const fields = snapshot.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = snapshot.snapshot.meta.node_types[0];
  const groups = new Map<string, { count: number; bytes: number }>();
  const nodes = snapshot.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]!] ?? '?';
    let name = snapshot.strings[nodes[i + nameAt]!] ?? '';
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number' || type === 'bigint') name = '';
    if (type === 'code') name = '';
    if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = name ? `${type} ${name}` : type;
    const group = groups.get(key) ?? { count: 0, bytes: 0 };
    group.count++;
    group.bytes += nodes[i + sizeAt]!;
    groups.set(key, group);
  }
  return groups;
}

/** SIGUSR2 to a daemon started with --heapsnapshot-signal; resolves with the file once it is complete. */
async function takeSnapshot(relay: Relay, dir: string): Promise<{ file: string; snapshot: HeapSnapshot }> {
  const before = new Set((await readdir(dir)).filter((n) => n.endsWith('.heapsnapshot')));
  process.kill(relay.pid, 'SIGUSR2');
  const deadline = Date.now() + 90_000;
  let lastSize = -1;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const fresh = (await readdir(dir)).find((n) => n.endsWith('.heapsnapshot') && !before.has(n));
    if (!fresh) continue;
    const file = path.join(dir, fresh);
    const { size } = await stat(file);
    if (size > 0 && size === lastSize) {
      try {
        return { file, snapshot: JSON.parse(await readFile(file, 'utf8')) as HeapSnapshot };
      } catch {
        // Still being written.
      }
    }
    lastSize = size;
  }
  throw new Error('the heap snapshot was not complete within 90 s');
}

interface HeapReport {
  readonly connections: number;
  readonly rssBefore: number;
  readonly rssAfterFirstSnapshot: number;
  readonly rssWith: number;
  readonly rssPerConnectionKiB: number;
  readonly heapPerConnectionBytes: number;
  readonly groups: HeapGroup[];
}

/** Snapshot, `n` idle relayed connections, snapshot: what the live heap gained, by group. */
async function heapPerConnection(rig: RigWithEnv, relay: Relay, n: number, heapDir: string, keep: string | undefined): Promise<HeapReport> {
  const target = { speaks: relay.speaks, port: relay.port };
  const held: Connection[] = [];
  try {
    for (let i = 0; i < 20; i++) (await openConnection(target, 'records', rig.context, 'IDLE')).close();
    await rig.server.drainedTo(0);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const rssBefore = relay.memoryKiB();
    const before = await takeSnapshot(relay, heapDir);
    const rssAfterFirstSnapshot = relay.memoryKiB();
    for (let i = 0; i < n; i += 25) {
      held.push(...await Promise.all(Array.from({ length: Math.min(25, n - i) }, () => openConnection(target, 'records', rig.context, 'IDLE'))));
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const rssWith = relay.memoryKiB();
    const after = await takeSnapshot(relay, heapDir);
    const groups = diffGroups(before.snapshot, after.snapshot);
    if (keep) {
      await mkdir(keep, { recursive: true });
      await cp(before.file, path.join(keep, 'idle-before.heapsnapshot'));
      await cp(after.file, path.join(keep, 'idle-after.heapsnapshot'));
    }
    return {
      connections: n,
      rssBefore,
      rssAfterFirstSnapshot,
      rssWith,
      rssPerConnectionKiB: (rssWith - rssAfterFirstSnapshot) / n,
      heapPerConnectionBytes: groups.reduce((sum, g) => sum + g.bytes, 0) / n,
      groups: groups.slice(0, 120),
    };
  } finally {
    for (const connection of held) connection.close();
    await rig.server.drainedTo(0, 20_000);
  }
}

function diffGroups(before: HeapSnapshot, after: HeapSnapshot): HeapGroup[] {
  const a = heapGroups(before);
  const b = heapGroups(after);
  const groups: HeapGroup[] = [];
  for (const [group, now] of b) {
    const was = a.get(group) ?? { count: 0, bytes: 0 };
    if (now.bytes !== was.bytes || now.count !== was.count) groups.push({ group, count: now.count - was.count, bytes: now.bytes - was.bytes });
  }
  return groups.sort((x, y) => y.bytes - x.bytes);
}

/** Snapshot, `n` connections opened and closed again (TLS handshakes), snapshot: what closed connections leave behind. */
async function heapAfterClosed(rig: RigWithEnv, relay: Relay, n: number, heapDir: string, keep: string | undefined): Promise<{ connections: number; bytesPerConnection: number; groups: HeapGroup[] }> {
  const target = { speaks: relay.speaks, port: relay.port };
  for (let i = 0; i < 30; i++) (await openConnection(target, 'tls', rig.context)).close();
  await rig.server.drainedTo(0);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const before = await takeSnapshot(relay, heapDir);
  for (let i = 0; i < n; i++) (await openConnection(target, 'tls', rig.context)).close();
  await rig.server.drainedTo(0);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const after = await takeSnapshot(relay, heapDir);
  const groups = diffGroups(before.snapshot, after.snapshot);
  if (keep) {
    await mkdir(keep, { recursive: true });
    await cp(before.file, path.join(keep, 'closed-before.heapsnapshot'));
    await cp(after.file, path.join(keep, 'closed-after.heapsnapshot'));
  }
  return { connections: n, bytesPerConnection: groups.reduce((sum, g) => sum + g.bytes, 0) / n, groups: groups.slice(0, 60) };
}

/* ------------------------------------------------------------ the runs */

function table(rows: readonly (readonly string[])[], right: readonly boolean[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

function showProfile(title: string, summary: ProfileSummary, inclusive: FunctionTime[], per: { units: number; unit: string }): string {
  const scale = (ms: number): string => (per.unit === 'GiB' ? `${(ms / per.units / 1000).toFixed(3)} s` : `${((ms / per.units) * 1000).toFixed(0)} µs`);
  const lines = [`\n== ${title}: ${summary.busyMs.toFixed(0)} ms sampled busy, ${scale(summary.busyMs)} per ${per.unit}`];
  lines.push('-- self time by area');
  lines.push(table(summary.byArea.slice(0, 14).map((a) => [a.area, `${(a.share * 100).toFixed(1)}%`, scale(a.selfMs)]), [false, true, true]));
  lines.push('-- self time by function (top)');
  lines.push(table(summary.byFunction.slice(0, 18).map((f) => [f.fn, f.where, `${((f.selfMs / summary.busyMs) * 100).toFixed(1)}%`, `total ${((f.totalMs / summary.busyMs) * 100).toFixed(1)}%`]), [false, false, true, true]));
  lines.push('-- daemon code, inclusive');
  lines.push(table(inclusive.slice(0, 12).map((f) => [f.fn, f.where, `${((f.totalMs / summary.busyMs) * 100).toFixed(1)}%`, scale(f.totalMs)]), [false, false, true, true]));
  return lines.join('\n');
}

async function main(options: Options): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'xop-profile-'));
  const report: Record<string, unknown> = { node: process.version, cores: os.cpus().length, loadBefore: os.loadavg() };
  const out: string[] = [];
  try {
    const rig = await createRig(dir);

    // 1. The relay's own cost: bulk both ways in records mode, on a fresh daemon and again after
    //    it handled a few hundred connections (the heap they leave behind makes GC dearer).
    process.stderr.write(`profile: relay, ${options.bulkBytes / 1024 ** 2} MiB each way in records mode, fresh and after ${options.handshakes} handshakes\n`);
    const relay = await withProfiledDaemon(rig, path.join(dir, 'relay'), async (daemon, measure) => {
      const path_ = { name: 'daemon' as const, target: { speaks: daemon.speaks, port: daemon.port }, relay: daemon };
      await bulkOnce(rig, path_, 'records', 16 * 1024 ** 2);
      const bulk = async (): Promise<number> => (await bulkOnce(rig, path_, 'records', options.bulkBytes)).bytes / 1024 ** 3;
      await measure('fresh', bulk);
      for (let i = 0; i < options.handshakes; i++) (await openConnection(path_.target, 'tls', rig.context)).close();
      await rig.server.drainedTo(0);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await measure('after', bulk);
    });
    report.relay = {};
    for (const [label, span] of relay.spans) {
      const summary = summarizeProfile(relay.profile, 25, span.window);
      const inclusive = daemonInclusive(relay.profile, span.window);
      const title = label === 'fresh' ? 'relay (bulk records), fresh daemon' : `relay (bulk records), the same daemon after ${options.handshakes} handshakes`;
      out.push(showProfile(title, summary, inclusive, { units: span.units, unit: 'GiB' }));
      out.push(`   daemon CPU from /proc over the same span: ${(span.cpuSeconds / span.units).toFixed(3)} s/GiB (the profiler adds some)`);
      (report.relay as Record<string, unknown>)[label] = { ...summary, gib: span.units, procCpuSeconds: span.cpuSeconds, inclusive };
    }

    // 2. Handshakes: negotiation, SOCKS to the hop, relaying the TLS handshake, closing.
    process.stderr.write(`profile: ${options.handshakes} handshakes\n`);
    const hs = await withProfiledDaemon(rig, path.join(dir, 'handshake'), async (daemon, measure) => {
      const target = { speaks: daemon.speaks, port: daemon.port };
      for (let i = 0; i < 30; i++) (await openConnection(target, 'tls', rig.context)).close();
      await rig.server.drainedTo(0);
      await measure('handshakes', async () => {
        for (let i = 0; i < options.handshakes; i++) (await openConnection(target, 'tls', rig.context)).close();
        await rig.server.drainedTo(0);
        return options.handshakes;
      });
    });
    const span = hs.spans.get('handshakes')!;
    const hsSummary = summarizeProfile(hs.profile, 25, span.window);
    const hsInclusive = daemonInclusive(hs.profile, span.window);
    out.push(showProfile('handshakes (connect → STARTTLS → TLS → close), after 30 warm-up connections', hsSummary, hsInclusive, { units: span.units, unit: 'connection' }));
    out.push(`   daemon CPU from /proc over the same span: ${((span.cpuSeconds / span.units) * 1e6).toFixed(0)} µs per connection (the profiler adds some)`);
    report.handshake = { ...hsSummary, connections: span.units, procCpuSeconds: span.cpuSeconds, inclusive: hsInclusive };

    // 3. Memory per idle relayed connection: heap snapshot diff, the daemon and the bare Node pipe.
    const heaps: Record<string, HeapReport> = {};
    for (const name of ['daemon', 'node-pipe'] as const) {
      process.stderr.write(`profile: heap snapshots around ${options.idle} idle relayed connections through ${name}\n`);
      const heapDir = path.join(dir, `heap-${name}`);
      await mkdir(heapDir, { recursive: true });
      const relay = name === 'daemon'
        ? await startDaemon('daemon', rig.env, { nodeFlags: ['--heapsnapshot-signal=SIGUSR2'], daemonArgs: ['--max-connections', '100000'], cwd: heapDir })
        : await startNodePipe(rig.env, { nodeFlags: ['--heapsnapshot-signal=SIGUSR2'], cwd: heapDir });
      try {
        heaps[name] = await heapPerConnection(rig, relay, options.idle, heapDir, options.keep ? path.join(options.keep, name) : undefined);
      } finally {
        await relay.stop();
      }
    }
    const n = options.idle;
    for (const [name, h] of Object.entries(heaps)) {
      out.push(`\n== ${name}: ${n} idle relayed connections (records mode, relaying)`);
      out.push(`   RSS ${h.rssBefore} KiB → ${h.rssAfterFirstSnapshot} KiB after the first snapshot → ${h.rssWith} KiB with ${n} connections: ${h.rssPerConnectionKiB.toFixed(1)} KiB each`);
      out.push(`   live JS heap (after the snapshot's GC) grew ${(h.heapPerConnectionBytes / 1024).toFixed(2)} KiB per connection; the other ${(h.rssPerConnectionKiB - h.heapPerConnectionBytes / 1024).toFixed(1)} KiB of RSS: garbage not yet collected, V8 heap headroom, malloc'd native state`);
    }
    const daemonHeap = heaps.daemon;
    const pipeHeap = heaps['node-pipe'];
    if (daemonHeap) {
      const pipeGroups = new Map((pipeHeap?.groups ?? []).map((g) => [g.group, g]));
      out.push(`-- per connection, by constructor (heap snapshot diff, self size): daemon${pipeHeap ? ' vs the bare pipe' : ''}`);
      const rows = daemonHeap.groups.slice(0, 36).map((g) => {
        const p = pipeGroups.get(g.group);
        return [g.group, (g.count / n).toFixed(2), `${(g.bytes / n).toFixed(0)} B`, p ? (p.count / n).toFixed(2) : '0', p ? `${(p.bytes / n).toFixed(0)} B` : '0 B'];
      });
      out.push(table([['group', 'daemon n', 'daemon B', 'pipe n', 'pipe B'], ...rows], [false, true, true, true, true]));
    }
    report.idle = heaps;

    // What connections that are already closed still hold (timers, caches), per connection.
    process.stderr.write(`profile: heap snapshots around ${options.handshakes} closed connections through the daemon\n`);
    const closedDir = path.join(dir, 'heap-closed');
    await mkdir(closedDir, { recursive: true });
    const closedDaemon = await startDaemon('daemon', rig.env, { nodeFlags: ['--heapsnapshot-signal=SIGUSR2'], daemonArgs: ['--max-connections', '100000'], cwd: closedDir });
    try {
      const closed = await heapAfterClosed(rig, closedDaemon, options.handshakes, closedDir, options.keep ? path.join(options.keep, 'daemon') : undefined);
      out.push(`\n== daemon: ${closed.connections} connections opened and closed (TLS), 1 s later: the live heap kept ${(closed.bytesPerConnection / 1024).toFixed(2)} KiB per closed connection`);
      out.push(table(closed.groups.slice(0, 16).map((g) => [g.group, (g.count / closed.connections).toFixed(2), `${(g.bytes / closed.connections).toFixed(0)} B`]), [false, true, true]));
      report.closed = closed;
    } finally {
      await closedDaemon.stop();
    }

    // 4. Start-up: spawn → listening, with a CPU profile.
    process.stderr.write('profile: start-up\n');
    const startupDir = path.join(dir, 'startup');
    await mkdir(startupDir, { recursive: true });
    const started = performance.now();
    const child = spawnBench(process.execPath, ['--cpu-prof', '--cpu-prof-dir', startupDir, '--cpu-prof-interval', '100', CLI, '--listen', '127.0.0.1:0', '--tor', `127.0.0.1:${rig.env.hopPort}`], { stdio: ['ignore', 'pipe', 'pipe'], env: daemonEnv() });
    await waitForLine(child, (l) => l.includes('listening on'));
    const ms = performance.now() - started;
    const listeningAt = monotonicMicros();
    // The daemon installs its SIGTERM handler a moment after the "listening" line; a SIGTERM
    // sent at once kills it without writing the profile.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await stopChild(child);
    const file = await newestFile(startupDir, '.cpuprofile');
    if (file) {
      const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
      const summary = summarizeProfile(profile, 25, { from: profile.startTime, to: listeningAt });
      out.push(`\n== start-up: ${ms.toFixed(0)} ms spawn → listening (with the profiler on); the profile from V8's start to that line: ${summary.busyMs.toFixed(0)} ms busy`);
      out.push('-- self time by area (module compilation and evaluation included)');
      out.push(table(summary.byArea.slice(0, 16).map((a) => [a.area, `${a.selfMs.toFixed(1)} ms`]), [false, true]));
      out.push('-- self time by function (top)');
      out.push(table(summary.byFunction.slice(0, 12).map((f) => [f.fn, f.where, `${f.selfMs.toFixed(1)} ms`, `total ${f.totalMs.toFixed(1)} ms`]), [false, false, true, true]));
      report.startup = { ms, ...summary };
    } else {
      out.push(`\n== start-up: ${ms.toFixed(0)} ms spawn → listening; no CPU profile was written (did the daemon exit cleanly on SIGTERM?)`);
    }
    if (options.keep) {
      await mkdir(options.keep, { recursive: true });
      for (const sub of ['relay', 'handshake', 'startup']) {
        // CPU profiles of each run, to open in Chrome DevTools (Performance tab) or speedscope.
        const f = await newestFile(path.join(dir, sub), '.cpuprofile').catch(() => undefined);
        if (f) await cp(f, path.join(options.keep, `${sub}.cpuprofile`));
      }
    }
    await rig.stop();
    process.stdout.write(`${out.join('\n')}\n`);
    const json = path.resolve(options.json);
    await mkdir(path.dirname(json), { recursive: true });
    await writeFile(json, `${JSON.stringify({ ...report, loadAfter: os.loadavg() }, null, 1)}\n`);
    process.stdout.write(`\nResults: ${path.relative(process.cwd(), json)}${options.keep ? `; profiles and snapshots in ${options.keep} (open in Chrome DevTools)` : ''}\n`);
  } finally {
    await stopAllChildren();
    await rm(dir, { recursive: true, force: true });
  }
}

try {
  await main(parse(process.argv.slice(2)));
} catch (error) {
  process.stderr.write(`profile: ${(error as Error).stack ?? String(error)}\n`);
  await stopAllChildren();
  process.exitCode = 1;
}
