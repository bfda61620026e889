/** Reading V8 CPU profiles (.cpuprofile from node --cpu-prof): self and inclusive time by function and by area. */
export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
export interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface FunctionTime {
  readonly fn: string;
  readonly where: string;
  readonly selfMs: number;
  readonly totalMs: number;
}

export interface ProfileSummary {
  /** Sampled time that was not idle, ms. */
  readonly busyMs: number;
  readonly byFunction: FunctionTime[];
  /** Self time by where the code lives: daemon code, a package, Node internals, GC, native. */
  readonly byArea: Array<{ area: string; selfMs: number; share: number }>;
}

function shortUrl(url: string): string {
  if (url === '') return '';
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) return url.slice(modules + '/node_modules/'.length);
  return url.replace(/^file:\/\//, '');
}

function area(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(program)') return 'native (program: libuv, syscalls)';
    if (functionName === '(idle)') return 'idle';
    return 'native / builtins';
  }
  if (url.startsWith('node:')) {
    const module = url.slice(5).replace(/^internal\//, '');
    if (/^(net|stream|streams\/|timers|events|buffer|process\/task_queues|tls|crypto)/.test(module)) return `node: ${module.split('/').slice(0, 2).join('/')}`;
    return `node: ${module.split('/')[0]}`;
  }
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/');
    return `package ${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return `daemon ${url.slice(dist + 1)}`;
  return url;
}

/** A span of CLOCK_MONOTONIC µs: V8's profile timestamps and process.hrtime share that clock. */
export interface Window {
  readonly from: number;
  readonly to: number;
}

export const monotonicMicros = (): number => Number(process.hrtime.bigint() / 1000n);

export function summarizeProfile(profile: CpuProfile, top = 25, window?: Window): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<number, number>();
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (window && (at < window.from || at > window.to)) continue;
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + delta / 1000);
  }
  const key = (frame: CallFrame): string => `${frame.functionName || '(anonymous)'} ${shortUrl(frame.url)}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
  const selfBy = new Map<string, number>();
  const totalBy = new Map<string, number>();
  const areas = new Map<string, number>();
  let busy = 0;
  for (const [id, ms] of self) {
    const node = byId.get(id)!;
    if (node.callFrame.functionName === '(idle)') continue;
    busy += ms;
    selfBy.set(key(node.callFrame), (selfBy.get(key(node.callFrame)) ?? 0) + ms);
    const a = area(node.callFrame);
    areas.set(a, (areas.get(a) ?? 0) + ms);
    // Inclusive time: each distinct function on the stack once.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const k = key(byId.get(at)!.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      totalBy.set(k, (totalBy.get(k) ?? 0) + ms);
    }
  }
  const byFunction = [...selfBy.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, ms]) => {
    const space = k.indexOf(' ');
    return { fn: k.slice(0, space), where: k.slice(space + 1), selfMs: ms, totalMs: totalBy.get(k) ?? ms };
  });
  const byArea = [...areas.entries()].sort((a, b) => b[1] - a[1]).map(([a, ms]) => ({ area: a, selfMs: ms, share: ms / busy }));
  return { busyMs: busy, byFunction, byArea };
}

/** Daemon code's inclusive time, e.g. the relay's 'data' handler with everything it calls. */
export function daemonInclusive(profile: CpuProfile, window: Window, top = 15): FunctionTime[] {
  const summary = summarizeProfile(profile, 100_000, window);
  return summary.byFunction.filter((f) => f.where.startsWith('dist/')).sort((a, b) => b.totalMs - a.totalMs).slice(0, top);
}

