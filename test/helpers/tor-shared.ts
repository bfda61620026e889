/**
 * One private Tor network per `tap` run, shared by every test file that needs
 * it (tap runs each test file in its own process; the network takes 10–30 s
 * to come up, so it must not be started per file).
 *
 * How it works
 * - The network is started lazily, by the first test file that calls
 *   `useTorNetwork(t)`, as detached tor processes; other test files (tap runs
 *   `jobs: 2` at once) wait for it through a state file. Runs that never touch
 *   Tor pay nothing.
 * - Everything lives in `<tmpdir>/xop-tor-run-<tap runner pid>/`: tap starts
 *   every test file and the global `after` script as direct children of its
 *   runner process, so `process.ppid` names the run without any set-up.
 * - `test/helpers/tor-after.ts` (tap's global `after` script) stops the tor
 *   processes by pid and removes the folder. Shared mode is used only when
 *   tap was given that script (`TAP_AFTER`), or when `XOP_TOR_SHARED=1`; as a
 *   backstop every tor also exits within ~15 s of the tap runner
 *   (`__OwningControllerProcess`).
 * - Without it (a test file run by hand with `node --import …`, or tap without
 *   the after script) `useTorNetwork` starts a private network for that file
 *   and stops it in the file's teardown.
 *
 * The network publishes a fixed set of onion services whose targets are
 * 127.0.0.1 ports chosen when it starts; a test file listens on
 * `await claimTarget(t, tor, 'fake1')` to serve the `fake1` onion. A claim is
 * a lock held until the test's teardown, so two test files running at the
 * same time never fight over a target port (the second one waits).
 *
 * Usage (mind tap's root-test autoend: once a teardown is registered on the
 * root test, tap ends it as soon as it is idle for two timer ticks, so after
 * `await useTorNetwork(t)` do further async set-up in `t.before()` or inside
 * subtests, not with more top-level `await`s):
 *
 *   const tor = await useTorNetwork(t);
 *   t.before(async () => {
 *     const port = await claimTarget(t, tor, 'fake1');
 *     await listenOn(port);   // your server for the fake1 onion
 *   });
 *   t.test('…', async (t) => {
 *     // SOCKS5 to 127.0.0.1:tor.socksPort, host tor.onions.fake1, port 5222
 *   });
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  freePortsBelowEphemeralRange,
  startTorNetwork,
  stopTorProcesses,
  type OnionServiceSpec,
  type TorNetwork,
  type TorNetworkTimings,
} from './tor-network.js';

/** The onion services of the shared network. */
export type SharedOnionName = 'prosody' | 'fake1' | 'fake2' | 'down';
/** 127.0.0.1 ports behind the onions. `down` is never listened on. */
export type SharedTargetName = 'prosody' | 'prosodyTls' | 'fake1' | 'fake2' | 'down';

export const SHARED_TARGET_NAMES: readonly SharedTargetName[] = ['prosody', 'prosodyTls', 'fake1', 'fake2', 'down'];

/**
 * Virtual ports:
 * - prosody: 5222 → targets.prosody (c2s, STARTTLS), 5223 → targets.prosodyTls (XEP-0368 direct TLS)
 * - fake1, fake2: 5222 → targets.fake1 / targets.fake2 (adversarial fake servers)
 * - down: 5222 → targets.down, where nothing listens (Tor answers 0x01)
 */
export function sharedServices(targets: Record<SharedTargetName, number>): OnionServiceSpec[] {
  return [
    { name: 'prosody', targetPort: targets.prosody, virtualPort: 5222, extraPorts: [{ virtualPort: 5223, targetPort: targets.prosodyTls }] },
    { name: 'fake1', targetPort: targets.fake1, virtualPort: 5222 },
    { name: 'fake2', targetPort: targets.fake2, virtualPort: 5222 },
    { name: 'down', targetPort: targets.down, virtualPort: 5222 },
  ];
}

/** What a test file gets: ports, onion names, targets. Serialisable (it is the state file). */
export interface SharedTorNetwork {
  version: 1;
  /** True if this network is shared by the whole tap run (do not reconfigure it; NEWNYM etc. affect other files). */
  shared: boolean;
  /** ExtendedErrors SocksPort. */
  socksPort: number;
  /** SocksPort without ExtendedErrors (IsolateDestAddr IsolateDestPort, like Tails' 9050). */
  plainSocksPort: number;
  controlPort: number;
  controlPassword?: string;
  controlCookieFile: string;
  onions: Record<SharedOnionName, string>;
  targets: Record<SharedTargetName, number>;
  exitFingerprint: string;
  pids: number[];
  dir: string;
  startupMs: number;
  timings: TorNetworkTimings;
}

interface StateFile {
  status: 'ready' | 'failed';
  network?: SharedTorNetwork;
  error?: string;
  /** pid of the test process that started the network. */
  starterPid: number;
}

/** Minimal shape of a tap Test used here. */
export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

const START_TIMEOUT_MS = 150_000;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A process's start time (clock ticks since boot), so a reused pid is not taken for the same process. */
function processStartTime(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22, counted after the ')' that ends the command name.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '0';
  } catch {
    return '0';
  }
}

const RUN_DIR_RE = /^xop-tor-run-(\d+)-(\d+)$/;
/** Folders of private networks (tor-network.ts): xop-tor-<owner pid>-<random>. */
const PRIVATE_DIR_RE = /^xop-tor-(\d+)-[A-Za-z0-9]{6}$/;

/** The folder of the shared network of the tap run whose runner has pid `runnerPid`. */
export function sharedRunDir(runnerPid: number = process.ppid): string {
  return path.join(os.tmpdir(), `xop-tor-run-${runnerPid}-${processStartTime(runnerPid)}`);
}

/** True when this process is a tap test file whose run will stop a shared network (see file comment). */
export function sharedModeAvailable(): boolean {
  if (process.env.XOP_TOR_SHARED === '0') return false;
  if (process.env.XOP_TOR_SHARED === '1') return true;
  const after = process.env.TAP_AFTER ?? '';
  return process.env.TAP === '1' && /(^|[/\\])tor-after\.[cm]?[jt]s$/.test(after);
}

async function readState(file: string): Promise<StateFile | undefined> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8')) as StateFile;
  } catch {
    return undefined;
  }
}

async function writeStateAtomically(file: string, state: StateFile): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, JSON.stringify(state, null, 2));
  await fsp.rename(tmp, file);
}

function toShared(net: TorNetwork, targets: Record<SharedTargetName, number>, shared: boolean): SharedTorNetwork {
  return {
    version: 1,
    shared,
    socksPort: net.socksPort,
    plainSocksPort: net.plainSocksPort,
    controlPort: net.controlPort,
    ...(net.controlPassword !== undefined ? { controlPassword: net.controlPassword } : {}),
    controlCookieFile: net.controlCookieFile,
    onions: net.onions as Record<SharedOnionName, string>,
    targets,
    exitFingerprint: net.exitFingerprint,
    pids: net.pids,
    dir: net.dir,
    startupMs: net.startupMs,
    timings: net.timings,
  };
}

async function chooseTargets(): Promise<Record<SharedTargetName, number>> {
  const ports = await freePortsBelowEphemeralRange(SHARED_TARGET_NAMES.length);
  return Object.fromEntries(SHARED_TARGET_NAMES.map((n, i) => [n, ports[i]!])) as Record<SharedTargetName, number>;
}

/**
 * The Tor network for this test file: the run's shared one (started here if
 * this file is the first to ask), or a private one stopped in `t`'s teardown.
 */
export async function useTorNetwork(t: TeardownHost): Promise<SharedTorNetwork> {
  if (!sharedModeAvailable()) {
    const targets = await chooseTargets();
    const net = await startTorNetwork({ services: sharedServices(targets) });
    t.teardown(() => net.stop());
    return toShared(net, targets, false);
  }

  const runDir = sharedRunDir();
  await fsp.mkdir(runDir, { recursive: true, mode: 0o700 });
  const stateFile = path.join(runDir, 'state.json');
  const lockFile = path.join(runDir, 'start.lock');

  let weStart = false;
  try {
    await fsp.writeFile(lockFile, String(process.pid), { flag: 'wx' });
    weStart = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }

  if (weStart) {
    try {
      const targets = await chooseTargets();
      const net = await startTorNetwork({
        dir: path.join(runDir, 'net'),
        services: sharedServices(targets),
        detached: true,
        ownerPid: process.ppid,
        timeoutMs: START_TIMEOUT_MS - 10_000,
      });
      const network = toShared(net, targets, true);
      await writeStateAtomically(stateFile, { status: 'ready', network, starterPid: process.pid });
      return network;
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      await writeStateAtomically(stateFile, { status: 'failed', error, starterPid: process.pid });
      throw err;
    }
  }

  // Another test file is starting it (or has started it): wait for its state file.
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const state = await readState(stateFile);
    if (state?.status === 'ready' && state.network) {
      const dead = state.network.pids.filter((pid) => !isAlive(pid));
      if (dead.length) throw new Error(`the shared Tor network in ${runDir} has lost tor processes ${dead.join(', ')}`);
      return state.network;
    }
    if (state?.status === 'failed') {
      throw new Error(`the shared Tor network failed to start (in test process ${state.starterPid}):\n${state.error ?? ''}`);
    }
    const starter = Number(await fsp.readFile(lockFile, 'utf8').catch(() => 'NaN'));
    if (Number.isInteger(starter) && starter > 0 && !isAlive(starter) && !(await readState(stateFile))) {
      throw new Error(`the test process that was starting the shared Tor network (pid ${starter}) died before it was ready; see ${runDir}/net/*/notice.log`);
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${START_TIMEOUT_MS} ms waiting for the shared Tor network (${stateFile})`);
    await delay(200);
  }
}

/**
 * Reserve one of the network's target ports for this test until its
 * teardown, and return it; listen on 127.0.0.1:<port> to serve that onion.
 * Waits (bounded) while another test file holds it.
 */
export async function claimTarget(t: TeardownHost, tor: SharedTorNetwork, name: Exclude<SharedTargetName, 'down'>, timeoutMs = 120_000): Promise<number> {
  const port = tor.targets[name];
  if (!tor.shared) return port;
  const lock = path.join(sharedRunDir(), `target-${name}.lock`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fsp.writeFile(lock, String(process.pid), { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(await fsp.readFile(lock, 'utf8').catch(() => 'NaN'));
      if (Number.isInteger(holder) && holder > 0 && !isAlive(holder)) {
        await fsp.rm(lock, { force: true }); // left by a test process that died
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(`target ${name} (port ${port}) still claimed by pid ${holder} after ${timeoutMs} ms`, { cause: err });
      }
      await delay(200);
    }
  }
  t.teardown(() => fsp.rm(lock, { force: true }));
  return port;
}

/**
 * Stop the shared network of the run whose runner is `runnerPid` (tor
 * processes by recorded pid, then the folder). Used by tor-after.ts. Also
 * removes folders left by earlier runs whose runner is gone.
 */
export async function stopSharedTorNetwork(runnerPid: number = process.ppid): Promise<{ stopped: number[] }> {
  const stopped: number[] = [];
  const stopOne = async (runDir: string): Promise<void> => {
    const netDir = path.join(runDir, 'net');
    const pids = new Set<number>();
    const state = await readState(path.join(runDir, 'state.json'));
    for (const pid of state?.network?.pids ?? []) pids.add(pid);
    // Also what was spawned before a start-up failed or was interrupted.
    const recorded = await fsp.readFile(path.join(netDir, 'tor.pids'), 'utf8').catch(() => '');
    for (const line of recorded.split('\n')) if (/^\d+$/.test(line.trim())) pids.add(Number(line));
    const list = [...pids];
    await stopTorProcesses(list, { cmdlineMustContain: netDir });
    stopped.push(...list);
    await fsp.rm(runDir, { recursive: true, force: true });
  };
  const mine = sharedRunDir(runnerPid);
  await stopOne(mine);
  // Leftovers of runs that were killed before their after script ran, and
  // of private networks whose test process was killed (SIGTERM skips
  // 'exit' handlers; the tors themselves exit via __OwningControllerProcess).
  for (const entry of fs.readdirSync(os.tmpdir())) {
    const full = path.join(os.tmpdir(), entry);
    const run = RUN_DIR_RE.exec(entry);
    if (run?.[1] && run[2] && full !== mine) {
      const pid = Number(run[1]);
      if (!(isAlive(pid) && processStartTime(pid) === run[2])) await stopOne(full); // that run is over
      continue;
    }
    const priv = PRIVATE_DIR_RE.exec(entry);
    if (priv?.[1] && !isAlive(Number(priv[1]))) {
      const recorded = await fsp.readFile(path.join(full, 'tor.pids'), 'utf8').catch(() => '');
      const pids = recorded.split('\n').filter((l) => /^\d+$/.test(l.trim())).map(Number);
      await stopTorProcesses(pids, { cmdlineMustContain: full });
      stopped.push(...pids);
      await fsp.rm(full, { recursive: true, force: true });
    }
  }
  return { stopped };
}
