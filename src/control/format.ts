import type { ConnectionEntry, EventMessage, SnapshotMessage } from './protocol.js';

/** "850ms", "42s", "3m02s", "1h02m", "2d03h". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const two = (n: number): string => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${two(Math.floor(s / 3600) % 24)}h`;
}

/** "512 B", "1.2 KiB", "34.0 MiB". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** Columns padded to the widest cell; the last column is not padded. */
export function table(rows: ReadonlyArray<readonly string[]>, indent = ''): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

export function connectionRows(connections: readonly ConnectionEntry[], ageOffsetMs = 0): string[][] {
  const withDomain = connections.some((c) => c.domain !== undefined);
  const head = ['ID', 'DOOR', 'ROUTE', 'MODE', 'STATE', 'AGE', ...(withDomain ? ['DOMAIN'] : [])];
  return [head, ...connections.map((c) => [
    String(c.id),
    c.door,
    c.route ?? '-',
    c.mode ?? '-',
    c.state,
    formatDuration(c.ageMs + ageOffsetMs),
    ...(withDomain ? [c.domain ?? '-'] : []),
  ])];
}

export function torWords(tor: SnapshotMessage['tor']): string {
  return tor.reachable ? `${tor.endpoint}: SOCKS5 answers` : `${tor.endpoint}: NOT REACHABLE (${tor.problem ?? 'no answer'})`;
}

export function refusedWords(counters: SnapshotMessage['counters']): string {
  const reasons = Object.entries(counters.refused).sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
  return reasons.length === 0 ? '0' : `${counters.refusedTotal} (${reasons.map(([reason, n]) => `${reason} ${n}`).join(', ')})`;
}

/** The `status` table. */
export function formatStatus(s: SnapshotMessage): string {
  const lines: string[] = [];
  lines.push(`xmpp-onion-proxy ${s.daemon.version}, pid ${s.daemon.pid}, up ${formatDuration(s.daemon.uptimeMs)}, memory ${formatBytes(s.daemon.rssBytes)}`);
  const subscribers = s.control.clients.filter((c) => c.subscribed).length;
  const dropped = s.control.clients.reduce((n, c) => n + c.dropped, 0);
  lines.push(...table([
    ['doors', s.doors.map((d) => `${d.host.includes(':') ? `[${d.host}]` : d.host}:${d.port} (${d.door})`).join(', ')],
    ['Tor', torWords(s.tor)],
    ['map', `generation ${s.map.generation}, ${s.map.entries} entries`],
    ['control', `${s.control.path}, ${s.control.clients.length} client${s.control.clients.length === 1 ? '' : 's'} (${subscribers} watching${dropped > 0 ? `, ${dropped} events dropped to slow ones` : ''})`],
    [''],
    ['accepted', String(s.counters.accepted)],
    ['open', String(s.counters.open)],
    ['relaying', String(s.counters.relaying)],
    ['refused', refusedWords(s.counters)],
    ['bytes', `${formatBytes(s.counters.bytesFromClient)} from clients, ${formatBytes(s.counters.bytesFromServer)} from servers (closed connections)`],
  ]));
  lines.push('');
  if (s.connections.length === 0) {
    lines.push('no open connections');
  } else {
    lines.push(...table(connectionRows(s.connections)));
    if (s.connectionsOmitted > 0) lines.push(`… and ${s.connectionsOmitted} more`);
  }
  if (s.recentRefusals.length > 0) {
    lines.push('', 'recent refusals:');
    lines.push(...table([...s.recentRefusals].reverse().map((r) => [clock(r.at), `#${r.id}`, r.reason]), '  '));
  }
  return `${lines.join('\n')}\n`;
}

/** One line per event, for `monitor` when its output is not a terminal. */
export function eventLine(e: EventMessage): string {
  const at = new Date(e.at).toISOString();
  switch (e.event) {
    case 'accepted':
      return `${at} #${e.id} accepted door=${e.door}`;
    case 'routed':
      return `${at} #${e.id} routed route=${e.route} mode=${e.mode}${e.domain !== undefined ? ` domain=${e.domain}` : ''}`;
    case 'tls-started':
      return `${at} #${e.id} tls-started`;
    case 'refused':
      return `${at} #${e.id} refused reason=${e.reason}`;
    case 'closed':
      return `${at} #${e.id} closed reason=${e.reason} fromClient=${e.fromClient} fromServer=${e.fromServer} ms=${e.ms}`;
  }
}

/** One line for a snapshot in the same stream (the first, and after a resync). */
export function snapshotLine(s: SnapshotMessage): string {
  const c = s.counters;
  return `${new Date(s.at).toISOString()} snapshot accepted=${c.accepted} open=${c.open} relaying=${c.relaying} refused=${c.refusedTotal}` +
    ` map=${s.map.generation}/${s.map.entries} tor=${s.tor.reachable ? 'ok' : 'unreachable'} dropped=${s.you.dropped}`;
}

export function clock(at: number): string {
  const d = new Date(at);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}
