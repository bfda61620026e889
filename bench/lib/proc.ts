/**
 * What the kernel says about a process, read from /proc: CPU time, memory, file-descriptor
 * limits and children. Linux only; every reader returns undefined once the process is gone.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let clockTicks: number | undefined;

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat (100 almost everywhere). */
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export interface StatTimes {
  /** utime + stime of the process (all its threads, dead ones included), seconds. */
  readonly self: number;
  readonly user: number;
  readonly system: number;
  /** cutime + cstime: children the process has waited for, seconds. */
  readonly children: number;
  readonly ppid: number;
}

/** /proc/<pid>/stat: fields 14–17 (utime, stime, cutime, cstime), in clock ticks. */
export function statTimes(pid: number): StatTimes | undefined {
  const text = read(`/proc/${pid}/stat`);
  if (text === undefined) return undefined;
  // The command name (field 2) may hold spaces and parentheses: count fields from the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const hz = ticksPerSecond();
  const field = (i: number): number => Number(fields[i] ?? 0);
  return {
    self: (field(11) + field(12)) / hz,
    user: field(11) / hz,
    system: field(12) / hz,
    children: (field(13) + field(14)) / hz,
    ppid: field(1),
  };
}

/**
 * CPU seconds of a process: the nanosecond run time of each live thread
 * (/proc/<pid>/task/<tid>/schedstat, first field), plus the children it has reaped
 * (cutime + cstime, socat's per-connection processes). Falls back to utime + stime (10 ms
 * resolution) where schedstat is missing.
 */
export function cpuSeconds(pid: number): number | undefined {
  const stat = statTimes(pid);
  if (stat === undefined) return undefined;
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  let ns = 0;
  for (const tid of tasks) {
    const schedstat = read(`/proc/${pid}/task/${tid}/schedstat`);
    if (schedstat === undefined) continue;
    ns += Number(schedstat.split(' ')[0] ?? 0);
  }
  const own = ns > 0 ? ns / 1e9 : stat.self;
  return own + stat.children;
}

function statusField(pid: number, name: string): number | undefined {
  const text = read(`/proc/${pid}/status`);
  if (text === undefined) return undefined;
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}

/** VmRSS, KiB. */
export function rssKiB(pid: number): number | undefined {
  return statusField(pid, 'VmRSS');
}

/** Proportional set size (shared pages divided among their users), KiB: fair to sum over processes. */
export function pssKiB(pid: number): number | undefined {
  const text = read(`/proc/${pid}/smaps_rollup`);
  if (text === undefined) return undefined;
  const match = /^Pss:\s+(\d+) kB/m.exec(text);
  return match ? Number(match[1]) : undefined;
}

/** Live direct children (by scanning /proc for the parent pid). */
export function childPids(pid: number): number[] {
  const found: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = statTimes(Number(entry));
    if (stat?.ppid === pid) found.push(Number(entry));
  }
  return found;
}

export interface FdLimit {
  readonly soft: number;
  readonly hard: number;
}

/** "Max open files" from /proc/<pid>/limits (soft and hard). */
export function fdLimit(pid: number | 'self'): FdLimit | undefined {
  const text = read(`/proc/${pid}/limits`);
  const match = text === undefined ? null : /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!match) return undefined;
  const value = (s: string | undefined): number => (s === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(s));
  return { soft: value(match[1]), hard: value(match[2]) };
}

/** Open file descriptors right now. */
export function fdCount(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

export interface IoCounts {
  /** read-family system calls (read, readv, recvmsg through the VFS) and the bytes they returned. */
  readonly syscr: number;
  readonly rchar: number;
  /** write-family system calls and their bytes. */
  readonly syscw: number;
  readonly wchar: number;
}

/** /proc/<pid>/io: how many read and write system calls the process made, and their bytes. */
export function ioCounts(pid: number): IoCounts | undefined {
  const text = read(`/proc/${pid}/io`);
  if (text === undefined) return undefined;
  const field = (name: string): number => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { syscr: field('syscr'), rchar: field('rchar'), syscw: field('syscw'), wchar: field('wchar') };
}
