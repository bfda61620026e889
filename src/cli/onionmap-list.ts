import type { MapEntry } from '../onionmap/entry.js';
import { EXIT } from './exit-codes.js';
import { formatTable, loadCliMap } from './onionmap-shared.js';

export function listCommand(options: { json?: boolean; map?: string }): number {
  const { map, used } = loadCliMap(options.map);
  const entries = map.entries();
  if (options.json) {
    process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
    return EXIT.ok;
  }
  const rows = [['DOMAIN', 'ONION', 'PORT', 'STATUS', 'SOURCE'], ...entries.map(row)];
  process.stdout.write(formatTable(rows));
  process.stdout.write(`${entries.length} entries from ${used.join(' < ')}\n`);
  return EXIT.ok;
}

function row(entry: MapEntry): string[] {
  const source = (entry.source ?? '(no source given)') + (entry.origin === 'bundled' ? '' : ` [from ${entry.origin}]`);
  return [entry.domain, onionCell(entry), entry.status === 'retired' ? '-' : String(entry.port), entry.status, source];
}

/** What the ONION column must make plain: which onions are used, and which are only kept for reference. */
function onionCell(entry: MapEntry): string {
  switch (entry.status) {
    case 'retired':
      return entry.onion ? `${entry.onion} (kept for reference, never used)` : '-';
    case 'no-onion':
      return `- (Tor exit to ${entry.host ?? entry.domain})`;
    default:
      return entry.onion ?? '-';
  }
}
