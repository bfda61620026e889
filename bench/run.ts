/**
 * `npm run bench`: the daemon against the relays people already trust, on the same loopback
 * workload (issue 8). See bench/README.md for what is measured and how to read the table.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseOptions, USAGE, type BenchOptions } from './lib/options.js';
import { logins } from './lib/login.js';
import { fdLimit } from './lib/proc.js';
import { stopAllChildren, tool } from './lib/processes.js';
import { buildRows, renderTable, type Measurements } from './lib/report.js';
import { CLI, startDaemon, startHaproxy, startHop, startNodePipe, startSocat, type Relay } from './lib/relays.js';
import { createRig, type RigWithEnv } from './lib/rig.js';
import { rotate } from './lib/stats.js';
import {
  bulkOnce, echo, handshakes, idle, maxConnections, preTlsAtBound, refusalAtLimit, roundTrips, startup,
  type BenchPath, type BulkSample, type IdleResult, type MaxConnectionsResult,
} from './lib/workloads.js';

const log = (text: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
};

function version(command: string, args: string[], pattern: RegExp): string | undefined {
  const found = tool(command);
  if (!found) return undefined;
  const out = spawnSync(found, args, { encoding: 'utf8' });
  return pattern.exec(`${out.stdout}${out.stderr}`)?.[1];
}

function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model,
    node: process.version,
    kernel: os.release(),
    memoryMiB: Math.round(os.totalmem() / 1024 ** 2),
    fdLimit: fdLimit('self'),
    haproxy: version('haproxy', ['-v'], /version (\S+)/),
    socat: version('socat', ['-V'], /socat version (\S+)/),
  };
}

async function main(options: BenchOptions): Promise<void> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm run bench does)`);
  const started = new Date();
  const notes: string[] = [];
  const loadBefore = os.loadavg();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'xop-bench-'));
  const m: { -readonly [K in keyof Measurements]: Measurements[K] } = { bulk: [], idle: [], maxConnections: [] };
  const long: Relay[] = [];
  let rig: RigWithEnv | undefined;
  try {
    log(`${options.quick ? 'quick' : 'full'} run, ${options.repeat} repetitions; machine: ${os.cpus().length} cores, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);
    rig = await createRig(dir);
    const { env, hop } = rig;
    const daemonOptions = { daemonArgs: ['--max-connections', '100000', ...options.daemonArgs], nodeFlags: options.daemonNodeFlags };
    const wanted = (name: 'socat' | 'haproxy'): boolean => {
      if (options.skip.has(name)) {
        notes.push(`${name}: skipped (--skip)`);
        return false;
      }
      if (!tool(name)) {
        notes.push(`${name}: not installed, baseline skipped (apt-get install ${name})`);
        return false;
      }
      return true;
    };
    const useSocat = wanted('socat');
    const useHaproxy = wanted('haproxy');
    const fresh: Record<string, (nofile?: number) => Promise<Relay | undefined>> = {
      'daemon': (nofile) => startDaemon('daemon', env, { ...daemonOptions, ...(nofile ? { nofile } : {}) }),
      'node-pipe': (nofile) => startNodePipe(env, nofile ? { nofile } : {}),
      ...(useHaproxy ? { haproxy: () => startHaproxy(env) } : {}),
      ...(useSocat ? { socat: () => startSocat(env) } : {}),
    };

    if (options.workloads.has('startup')) {
      log(`start-up to listening, ${options.sizes.startupRuns} runs (daemon and bare Node, interleaved)`);
      m.startup = await startup(hop.port, options.sizes.startupRuns);
    }

    if (options.workloads.has('roundtrips')) {
      const delayMs = options.sizes.circuitDelayMs;
      log(`round trips: ${options.sizes.roundTripsPerPath} connections per path over a modelled circuit of ${delayMs} ms one way`);
      const circuit = await startHop(dir, delayMs);
      const circuitEnv = { ...env, hopPort: circuit.port };
      const daemon = await startDaemon('daemon', circuitEnv, daemonOptions);
      const daemonSocks = await startDaemon('daemon-socks', circuitEnv, daemonOptions);
      try {
        m.roundTrips = await roundTrips(rig, [
          { name: 'direct', target: { speaks: 'socks', port: circuit.port } },
          { name: daemon.name, target: { speaks: daemon.speaks, port: daemon.port }, relay: daemon },
          { name: daemonSocks.name, target: { speaks: daemonSocks.speaks, port: daemonSocks.port }, relay: daemonSocks },
        ], options.sizes.roundTripsPerPath, delayMs);
        for (const failure of m.roundTrips.failures) notes.push(`round trips: a connection failed: ${failure}`);
      } finally {
        await daemon.stop();
        await daemonSocks.stop();
        await circuit.stop();
      }
    }

    if (options.workloads.has('login')) {
      log(`login: ${options.sizes.loginsPerPath} go-sendxmpp logins per path to Prosody over the modelled circuit`);
      const result = await logins(env, daemonOptions, options.sizes.loginsPerPath, options.sizes.circuitDelayMs, notes);
      if (result) m.login = result;
      for (const failure of result?.failures ?? []) notes.push(`login: ${failure}`);
    }

    const needLong = ['handshake', 'echo', 'bulk'].some((w) => options.workloads.has(w as 'bulk'));
    const paths: BenchPath[] = [];
    if (needLong) {
      const daemon = await startDaemon('daemon', env, daemonOptions);
      const daemonSocks = await startDaemon('daemon-socks', env, daemonOptions);
      long.push(daemon, daemonSocks, await startNodePipe(env));
      const haproxy = useHaproxy ? await startHaproxy(env) : undefined;
      const socat = useSocat ? await startSocat(env) : undefined;
      if (haproxy) long.push(haproxy);
      if (socat) long.push(socat);
      paths.push({ name: 'direct', target: { speaks: 'socks', port: hop.port } });
      for (const relay of long) paths.push({ name: relay.name, target: { speaks: relay.speaks, port: relay.port }, relay });
    }
    // The SOCKS door runs the same relay code as the connect-server door: it is timed for handshakes only.
    const relayPaths = paths.filter((p) => p.name !== 'daemon-socks');

    if (options.workloads.has('handshake')) {
      log(`handshakes: ${options.sizes.handshakesPerRep} × ${options.repeat} per path, interleaved one by one over ${paths.length} paths`);
      m.handshake = await handshakes(rig, paths, options.sizes.handshakesPerRep, options.repeat);
    }
    if (options.workloads.has('echo')) {
      log(`echo: ${options.sizes.echoPerRep} × ${options.repeat} round trips per path, interleaved`);
      m.echo = await echo(rig, relayPaths, options.sizes.echoPerRep, options.repeat);
    }
    if (options.workloads.has('bulk')) {
      const bulk: BulkSample[] = [];
      for (const mode of ['records', 'tls'] as const) {
        const bytes = mode === 'records' ? options.sizes.bulkRecordsBytes : options.sizes.bulkTlsBytes;
        log(`bulk ${mode}: ${bytes / 1024 ** 2} MiB each way at once, ${options.repeat} × ${relayPaths.length} paths, interleaved`);
        for (const path of relayPaths) await bulkOnce(rig, path, mode, Math.min(bytes, 8 * 1024 ** 2)); // warm-up
        for (let rep = 0; rep < options.repeat; rep++) {
          for (const path of rotate(relayPaths, rep)) bulk.push(await bulkOnce(rig, path, mode, bytes));
        }
      }
      m.bulk = bulk;
    }
    for (const relay of long) await relay.stop();
    long.length = 0;

    const self = fdLimit('self');
    const fitting = (counts: readonly number[]): number[] => {
      // Two descriptors per connection here (client and server end) and in the hop and the relay.
      const room = Math.floor(((self?.soft ?? 1024) - 200) / 2);
      const kept = counts.filter((c) => c <= room);
      if (kept.length < counts.length) notes.push(`idle: ${counts.filter((c) => c > room).join(', ')} connections do not fit the fd limit ${self?.soft} (ulimit -n); skipped`);
      return kept;
    };
    if (options.workloads.has('idle')) {
      const idleResults: IdleResult[] = [];
      for (const [name, start] of Object.entries(fresh)) {
        const counts = fitting(name === 'daemon' ? options.sizes.idleDaemon : name === 'socat' ? options.sizes.idleSocat : options.sizes.idleBaselines);
        if (counts.length === 0) continue;
        const relay = await start();
        if (!relay) continue;
        log(`idle: ${counts.join(' then ')} relayed connections held open through a fresh ${name}`);
        try {
          idleResults.push(await idle(rig, relay, counts, options.sizes.settleMs));
        } finally {
          await relay.stop();
        }
      }
      m.idle = idleResults;
    }
    if (options.workloads.has('pretls')) {
      const count = 400;
      log(`memory before TLS: ${count} connections at every pre-TLS bound, held by a fresh daemon`);
      const relay = (await fresh.daemon!())!;
      try {
        m.preTls = await preTlsAtBound(relay, count, options.sizes.settleMs);
      } finally {
        await relay.stop();
      }
    }
    if (options.workloads.has('maxconn') && !tool('prlimit')) notes.push('maxconn: skipped (prlimit, from util-linux, sets the relay\'s fd limit)');
    else if (options.workloads.has('maxconn')) {
      const fd = options.sizes.maxConnFdLimit;
      const results: MaxConnectionsResult[] = [];
      for (const name of ['daemon', 'node-pipe'] as const) {
        log(`most concurrent connections: a fresh ${name} with fd limit ${fd}, batches of 64 until the first error (at most ${fd})`);
        const relay = (await fresh[name]!(fd))!;
        try {
          results.push(await maxConnections(rig, relay, fd, fd));
        } finally {
          await relay.stop();
        }
      }
      m.maxConnections = results;
      const limit = options.sizes.refusalLimit;
      log(`refusal at the configured limit: daemon --max-connections ${limit}, then one more`);
      const limited = await startDaemon('daemon', env, { daemonArgs: [...options.daemonArgs, '--max-connections', String(limit)], nodeFlags: options.daemonNodeFlags });
      try {
        m.refusal = await refusalAtLimit(rig, limited, limit);
      } finally {
        await limited.stop();
      }
      if (!m.refusal.clear) notes.push(`refusal at --max-connections ${limit}: not a resource-constraint stream error: ${m.refusal.answer}`);
    }
    await rig.stop();
    rig = undefined;

    const rows = buildRows(m);
    const loadAfter = os.loadavg();
    const table = renderTable(rows);
    const machineInfo = machine();
    process.stdout.write(`\n${table}\n\n`);
    process.stdout.write(`Medians; ±: half the range of the ${options.repeat} per-repetition values over the median. `
      + `Machine: ${machineInfo.cores} cores (${String(machineInfo.cpu)}), Node ${process.version}; load average ${loadBefore[0]!.toFixed(2)} before, ${loadAfter[0]!.toFixed(2)} after`
      + `${loadBefore[0]! > 0.5 ? ' (other work was running)' : ''}.\n`);
    const limits = machineInfo.fdLimit as { soft: number; hard: number } | undefined;
    if (limits) process.stdout.write(`File descriptors (ulimit -n): soft ${limits.soft}, hard ${limits.hard} (Node raises its soft limit to the hard one; the children inherit it).\n`);
    if (m.refusal) process.stdout.write(`Refusal at --max-connections ${m.refusal.limit}: ${m.refusal.clear ? 'clear (resource-constraint stream error)' : `NOT clear: ${m.refusal.answer}`}.\n`);
    for (const result of m.maxConnections) {
      if (result.firstError) process.stdout.write(`Most concurrent, ${result.relay}: first error after ${result.reached}: ${result.firstError.slice(0, 160)}\n`);
    }
    for (const result of m.idle) if (result.error) process.stdout.write(`Idle, ${result.relay}: ${result.error.slice(0, 200)}\n`);
    for (const note of notes) process.stdout.write(`Note: ${note}\n`);
    const out = path.resolve(options.json);
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(out, `${JSON.stringify({
      bench: 'xmpp-onion-proxy relay bench (issue 8)',
      startedAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
      options: { ...options, workloads: [...options.workloads], skip: [...options.skip] },
      machine: { ...machineInfo, loadBefore, loadAfter },
      notes,
      table,
      rows,
      measurements: m,
    }, null, 1)}\n`);
    process.stdout.write(`Results: ${path.relative(process.cwd(), out)}\n`);
  } finally {
    for (const relay of long) await relay.stop();
    await rig?.stop();
    await stopAllChildren();
    await rm(dir, { recursive: true, force: true });
  }
}

let parsed: ReturnType<typeof parseOptions>;
try {
  parsed = parseOptions(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`bench: ${(error as Error).message}\n`);
  process.exit(2);
}
if (parsed === 'help') {
  process.stdout.write(USAGE);
} else {
  const stop = (): void => {
    void stopAllChildren().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await main(parsed);
  } catch (error) {
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  }
  // Every child is stopped and every server closed by now; nothing may keep a finished bench alive.
  process.exit();
}
