/** The one table: each metric's median (± half the spread of the per-repetition values) per path, and the daemon's ratios. */
import type { BulkSample, EchoResult, HandshakeResult, IdleResult, LimitRefusal, MaxConnectionsResult, PathName, PreTlsResult, RoundTripResult, StartupResult } from './workloads.js';
import type { LoginResult } from './login.js';
import { median, quantile, spreadPercent } from './stats.js';

export const COLUMNS: readonly PathName[] = ['daemon', 'daemon-socks', 'node-pipe', 'haproxy', 'socat', 'direct'];
const HEADINGS: Record<PathName, string> = {
  'daemon': 'daemon',
  'daemon-socks': 'daemon SOCKS',
  'node-pipe': 'node pipe',
  'haproxy': 'haproxy',
  'socat': 'socat',
  'direct': 'no daemon',
};

export interface Cell {
  readonly value: number;
  /** ± % (half the range of the per-repetition values over their median); absent with one value. */
  readonly spread?: number;
  readonly samples: readonly number[];
}

export interface Row {
  readonly metric: string;
  readonly cells: Partial<Record<PathName, Cell>>;
  /** Lower is better (CPU, latency, memory); false: higher is better. */
  readonly lowerIsBetter: boolean;
  readonly target?: string;
  readonly ok?: boolean;
  readonly digits: number;
}

export interface Measurements {
  readonly startup?: StartupResult;
  readonly handshake?: HandshakeResult;
  readonly echo?: EchoResult;
  readonly bulk: readonly BulkSample[];
  readonly idle: readonly IdleResult[];
  readonly maxConnections: readonly MaxConnectionsResult[];
  readonly refusal?: LimitRefusal;
  readonly preTls?: PreTlsResult;
  readonly roundTrips?: RoundTripResult;
  readonly login?: LoginResult;
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function cell(samples: readonly number[]): Cell | undefined {
  const finite = samples.filter((s) => Number.isFinite(s));
  if (finite.length === 0) return undefined;
  const spread = spreadPercent(finite);
  return { value: median(finite), samples: finite, ...(Number.isFinite(spread) ? { spread } : {}) };
}

function cells(make: (path: PathName) => readonly number[] | undefined): Partial<Record<PathName, Cell>> {
  const out: Partial<Record<PathName, Cell>> = {};
  for (const path of COLUMNS) {
    const samples = make(path);
    const c = samples ? cell(samples) : undefined;
    if (c) out[path] = c;
  }
  return out;
}

/** Times over a circuit as round trips, and the round trips each door adds to going alone (target: two saved, at least 1.75). */
function roundTripRows(rt: { readonly delayMs: number; readonly samples: Partial<Record<PathName, number[]>> }, what: string): Row[] {
  const rtt = 2 * rt.delayMs;
  const rows: Row[] = [{ metric: `round trips ${what}, circuit ${rt.delayMs} ms one way`, cells: cells((p) => rt.samples[p]?.map((ms) => ms / rtt)), lowerIsBetter: true, digits: 2 }];
  const direct = rt.samples.direct;
  if (direct?.length) {
    const added = cells((p) => (p === 'direct' ? undefined : rt.samples[p]?.length ? [(median(rt.samples[p]!) - median(direct)) / rtt] : undefined));
    rows.push({
      metric: `round trips added ${what} (negative: saved)`,
      cells: added,
      lowerIsBetter: true,
      target: '≤ −1.75',
      ...(added.daemon && added['daemon-socks'] ? { ok: added.daemon.value <= -1.75 && added['daemon-socks'].value <= -1.75 } : {}),
      digits: 2,
    });
  }
  return rows;
}

export function buildRows(m: Measurements): Row[] {
  const rows: Row[] = [];
  if (m.roundTrips) rows.push(...roundTripRows(m.roundTrips, 'to TLS'));
  if (m.login) rows.push(...roundTripRows(m.login, 'for a go-sendxmpp login to Prosody'));
  for (const mode of ['records', 'tls'] as const) {
    const samples = (path: PathName): BulkSample[] => m.bulk.filter((b) => b.path === path && b.mode === mode);
    if (m.bulk.some((b) => b.mode === mode)) {
      const cpu = cells((p) => samples(p).map((b) => (b.relayCpuSeconds === undefined ? Number.NaN : b.relayCpuSeconds / (b.bytes / GiB))));
      const ratio = cpu.daemon && cpu['node-pipe'] ? cpu.daemon.value / cpu['node-pipe'].value : undefined;
      rows.push({
        metric: `relay CPU s/GiB, bulk ${mode === 'tls' ? 'TLS' : 'records'}`,
        cells: cpu,
        lowerIsBetter: true,
        target: '≤ 1.1 × pipe',
        ...(ratio !== undefined ? { ok: ratio <= 1.1 } : {}),
        digits: 2,
      });
      rows.push({
        metric: `relay KiB per read syscall, ${mode === 'tls' ? 'TLS' : 'records'}`,
        cells: cells((p) => samples(p).map((b) => (b.relayReads ? b.bytes / b.relayReads / 1024 : Number.NaN))),
        lowerIsBetter: false,
        digits: 1,
      });
      rows.push({
        metric: `throughput MiB/s, bulk ${mode === 'tls' ? 'TLS' : 'records'}`,
        cells: cells((p) => samples(p).map((b) => b.bytes / MiB / b.seconds)),
        lowerIsBetter: false,
        digits: 0,
      });
    }
  }
  const hs = m.handshake;
  if (hs) {
    const direct = hs.samples.direct;
    rows.push({ metric: 'handshake ms, connect→TLS', cells: cells((p) => hs.samples[p]?.map((r) => median(r))), lowerIsBetter: true, digits: 2 });
    if (direct) {
      const added = cells((p) => (p === 'direct' ? undefined : hs.samples[p]?.map((r, i) => median(r) - median(direct[i] ?? []))));
      rows.push({
        metric: 'added handshake ms (vs no daemon)',
        cells: added,
        lowerIsBetter: true,
        target: '≤ 0.3 ms',
        ...(added.daemon ? { ok: added.daemon.value <= 0.3 } : {}),
        digits: 2,
      });
    }
    rows.push({ metric: 'relay CPU µs per handshake', cells: cells((p) => hs.relayCpuMicros[p]), lowerIsBetter: true, digits: 0 });
  }
  const ec = m.echo;
  if (ec) {
    const direct = ec.samples.direct;
    rows.push({ metric: 'echo round trip µs (TLS, 160 B)', cells: cells((p) => ec.samples[p]?.map((r) => median(r))), lowerIsBetter: true, digits: 0 });
    rows.push({ metric: 'echo round trip p99 µs', cells: cells((p) => ec.samples[p]?.map((r) => quantile(r, 0.99))), lowerIsBetter: true, target: '≤ 1.1 × pipe', digits: 0,
      ...(ec.samples.daemon && ec.samples['node-pipe'] ? { ok: median(ec.samples.daemon.map((r) => quantile(r, 0.99))) <= 1.1 * median(ec.samples['node-pipe'].map((r) => quantile(r, 0.99))) } : {}) });
    if (direct) {
      rows.push({
        metric: 'added echo round trip µs',
        cells: cells((p) => (p === 'direct' ? undefined : ec.samples[p]?.map((r, i) => median(r) - median(direct[i] ?? [])))),
        lowerIsBetter: true,
        digits: 0,
      });
    }
  }
  const idleCounts = [...new Set(m.idle.flatMap((r) => r.points.map((p) => p.connections)))].sort((a, b) => a - b);
  for (const count of idleCounts) {
    const row = cells((p) => m.idle.filter((r) => r.relay === p).flatMap((r) => r.points.filter((x) => x.connections === count).map((x) => x.perConnectionKiB)));
    rows.push({
      metric: `KiB per idle relayed conn @${count}`,
      cells: row,
      lowerIsBetter: true,
      target: '≤ 12 KiB',
      ...(row.daemon ? { ok: row.daemon.value <= 12 } : {}),
      digits: 1,
    });
  }
  if (idleCounts.length >= 2) {
    const [low, high] = [idleCounts[0]!, idleCounts[idleCounts.length - 1]!];
    const marginal = cells((p) => m.idle.filter((r) => r.relay === p).flatMap((r) => {
      const a = r.points.find((x) => x.connections === low);
      const b = r.points.find((x) => x.connections === high);
      return a && b ? [(b.memoryKiB - a.memoryKiB) / (high - low)] : [];
    }));
    rows.push({ metric: `KiB per extra idle conn ${low}→${high}`, cells: marginal, lowerIsBetter: true, digits: 1 });
  }
  const pre = m.preTls;
  if (pre) {
    const daemon = cell([pre.perConnectionKiB]);
    rows.push({
      metric: `KiB per negotiating conn at the pre-TLS bound @${pre.connections}`,
      cells: daemon ? { daemon } : {},
      lowerIsBetter: true,
      target: `≤ ${pre.boundKiB} KiB`,
      ok: pre.perConnectionKiB <= pre.boundKiB,
      digits: 1,
    });
  }
  if (m.maxConnections.length > 0) {
    const fd = m.maxConnections[0]!.fdLimit;
    const mc = cells((p) => m.maxConnections.filter((r) => r.relay === p).map((r) => r.reached));
    const pipe = mc['node-pipe']?.value;
    rows.push({
      metric: `most concurrent conns (fd limit ${fd})`,
      cells: mc,
      lowerIsBetter: false,
      target: '≈ fd limit / 2',
      ...(mc.daemon ? { ok: mc.daemon.value >= 0.97 * (pipe ?? fd / 2) } : {}),
      digits: 0,
    });
  }
  const su = m.startup;
  if (su) {
    const row: Partial<Record<PathName, Cell>> = {};
    const d = cell(su.daemon);
    const n = cell(su.nodeFloor);
    if (d) row.daemon = d;
    if (n) row['node-pipe'] = n;
    rows.push({ metric: 'start-up→listening ms (pipe: bare Node)', cells: row, lowerIsBetter: true, digits: 0 });
    const one = cell(su.oneFile);
    if (one) {
      rows.push({
        metric: 'start-up→listening ms, one-file build (pipe: bare Node)',
        cells: { daemon: one, ...(n ? { 'node-pipe': n } : {}) },
        lowerIsBetter: true,
        target: '≤ 150 ms',
        ok: one.value <= 150,
        digits: 0,
      });
    }
    const cpu: Partial<Record<PathName, Cell>> = {};
    const dc = cell(su.daemonCpu);
    const nc = cell(su.nodeFloorCpu);
    if (dc) cpu.daemon = dc;
    if (nc) cpu['node-pipe'] = nc;
    rows.push({ metric: 'start-up CPU ms to listening (pipe: bare Node)', cells: cpu, lowerIsBetter: true, digits: 0 });
    const oneCpu = cell(su.oneFileCpu);
    if (oneCpu) rows.push({ metric: 'start-up CPU ms, one-file build (pipe: bare Node)', cells: { daemon: oneCpu, ...(nc ? { 'node-pipe': nc } : {}) }, lowerIsBetter: true, digits: 0 });
  }
  return rows;
}

function format(value: number, digits: number): string {
  return value.toFixed(digits);
}

function showCell(c: Cell | undefined, digits: number): string {
  if (!c) return '—';
  const spread = c.spread === undefined ? '' : `±${c.spread < 10 ? c.spread.toFixed(1) : Math.round(c.spread)}%`;
  return `${format(c.value, digits)}${spread ? ' ' + spread : ''}`;
}

function ratio(a: Cell | undefined, b: Cell | undefined): string {
  if (!a || !b || b.value === 0 || !Number.isFinite(a.value / b.value)) return '—';
  return `×${(a.value / b.value).toFixed(2)}`;
}

export function renderTable(rows: readonly Row[]): string {
  const present = COLUMNS.filter((c) => rows.some((r) => r.cells[c] !== undefined));
  const header = ['metric', ...present.map((c) => HEADINGS[c]), 'daemon÷pipe', 'daemon÷haproxy', 'target', ''];
  const body = rows.map((r) => [
    r.metric,
    ...present.map((c) => showCell(r.cells[c], r.digits)),
    ratio(r.cells.daemon, r.cells['node-pipe']),
    ratio(r.cells.daemon, r.cells.haproxy),
    r.target ?? '',
    r.ok === undefined ? '' : r.ok ? 'ok' : 'MISS',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((line) => line[i]!.length)));
  const line = (cols: readonly string[]): string => `| ${cols.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `| ${widths.map((w, i) => (i === 0 ? '-'.repeat(w) : '-'.repeat(w - 1) + ':')).join(' | ')} |`;
  return [line(header), rule, ...body.map(line)].join('\n');
}
