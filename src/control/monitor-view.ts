import { clock, connectionRows, formatBytes, formatDuration, refusedWords, table } from './format.js';
import type { ConnectionEntry, RecentRefusal, ServerMessage, SnapshotMessage } from './protocol.js';

type Counters = { -readonly [K in keyof SnapshotMessage['counters']]: SnapshotMessage['counters'][K] } & { refused: Record<string, number> };
type Live = { -readonly [K in keyof ConnectionEntry]: ConnectionEntry[K] } & { startedAt: number };

const RECENT_SHOWN = 5;

/**
 * What `monitor` shows: the last snapshot, brought up to date by the events after it. A snapshot
 * (asked for every few seconds, or sent after a resync) replaces everything, so a dropped event
 * is wrong on screen for a few seconds at most.
 */
export class MonitorModel {
  snapshot: SnapshotMessage | undefined;
  #counters: Counters | undefined;
  readonly #connections = new Map<number, Live>();
  #recent: RecentRefusal[] = [];

  apply(message: ServerMessage): void {
    if (message.type === 'snapshot') {
      this.snapshot = message;
      this.#counters = { ...message.counters, refused: { ...message.counters.refused } };
      this.#connections.clear();
      for (const c of message.connections) this.#connections.set(c.id, { ...c, startedAt: message.at - c.ageMs });
      this.#recent = [...message.recentRefusals];
      return;
    }
    if (message.type !== 'event' || !this.#counters) return;
    const counters = this.#counters;
    const live = this.#connections.get(message.id);
    switch (message.event) {
      case 'accepted':
        counters.accepted++;
        counters.open++;
        this.#connections.set(message.id, { id: message.id, door: message.door, state: 'negotiating', ageMs: 0, startedAt: message.at });
        break;
      case 'routed':
        if (live) Object.assign(live, { route: message.route, mode: message.mode }, message.domain !== undefined ? { domain: message.domain } : {});
        break;
      case 'tls-started':
        if (live && live.state !== 'relaying') counters.relaying++;
        if (live) live.state = 'relaying';
        break;
      case 'refused':
        counters.refused[message.reason] = (counters.refused[message.reason] ?? 0) + 1;
        counters.refusedTotal++;
        if (live?.state === 'relaying') counters.relaying--;
        if (live) live.state = 'closing';
        this.#recent.push({ at: message.at, id: message.id, reason: message.reason });
        if (this.#recent.length > 20) this.#recent.shift();
        break;
      case 'closed':
        if (live) {
          if (live.state === 'relaying') counters.relaying--;
          counters.open--;
          this.#connections.delete(message.id);
        }
        counters.bytesFromClient += message.fromClient;
        counters.bytesFromServer += message.fromServer;
        break;
    }
  }

  /** The screen as lines, each at most `columns` wide, at most `rows` of them. */
  render(columns: number, rows: number, now: number, footer: string): string[] {
    const s = this.snapshot;
    const counters = this.#counters;
    if (!s || !counters) return fit(['xmpp-onion-proxy monitor: waiting for the daemon…', '', footer], columns, rows);
    const uptime = s.daemon.uptimeMs + (now - s.at);
    const top = [
      // What matters most first: a narrow terminal cuts the end.
      `xmpp-onion-proxy ${s.daemon.version} · Tor ${s.tor.endpoint} ${s.tor.reachable ? 'answers' : 'NOT REACHABLE'} · ` +
        `map gen ${s.map.generation} (${s.map.entries} entries) · up ${formatDuration(uptime)} · pid ${s.daemon.pid}`,
      `accepted ${counters.accepted}   open ${counters.open}   relaying ${counters.relaying}   refused ${counters.refusedTotal}   ` +
        `from clients ${formatBytes(counters.bytesFromClient)}   from servers ${formatBytes(counters.bytesFromServer)}`,
      '',
    ];
    const recent = this.#recent.slice(-RECENT_SHOWN).reverse();
    const bottom = [
      '',
      ...wrap(`REFUSED  ${refusedWords(counters)}`, columns, 3),
      'RECENT REFUSALS',
      ...(recent.length === 0 ? ['  none'] : table(recent.map((r) => [clock(r.at), `#${r.id}`, r.reason]), '  ')),
      '',
      footer,
    ];
    const connections = [...this.#connections.values()].sort((a, b) => a.id - b.id).map((c) => ({ ...c, ageMs: now - c.startedAt }));
    const room = Math.max(1, rows - top.length - bottom.length - 1);
    const middle = [`CONNECTIONS (${connections.length} open${s.connectionsOmitted > 0 ? `, ${s.connectionsOmitted} not listed` : ''})`];
    if (connections.length === 0) {
      middle.push('  none');
    } else {
      const shown = connections.length + 1 <= room ? connections : connections.slice(0, Math.max(0, room - 2));
      middle.push(...table(connectionRows(shown), '  '));
      if (shown.length < connections.length) middle.push(`  … ${connections.length - shown.length} more`);
    }
    return fit([...top, ...middle, ...bottom], columns, rows);
  }
}

function fit(lines: readonly string[], columns: number, rows: number): string[] {
  return lines.slice(0, rows).map((line) => ([...line].length > columns ? `${[...line].slice(0, Math.max(0, columns - 1)).join('')}…` : line));
}

/** Words on at most `max` lines of `columns` (the last one cut by fit() if still too long). */
function wrap(text: string, columns: number, max: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > columns && lines.length < max - 1) {
      lines.push(line);
      line = `  ${word}`;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  return [...lines, line];
}
