import { renameSync, writeFileSync } from 'node:fs';
import { loadBundledMap } from '../onionmap/bundled.js';
import type { MapEntry } from '../onionmap/entry.js';
import { readOnionsMapFile, type ImportReport } from '../onionmap/lua-import.js';
import { formatMapJson } from '../onionmap/map-file-writer.js';
import { EXIT } from './exit-codes.js';

/**
 * Converts a Prosody onions_map into a JSON map. Without --out the JSON goes to standard output
 * (so it can be piped) and the report to standard error. Exit 1 when anything was skipped.
 */
export function importCommand(file: string, options: { out?: string; keepStale?: boolean }): number {
  const report = readOnionsMapFile(file);
  const reportTo = options.out ? process.stdout : process.stderr;
  if (report.problem !== undefined && report.imported.length === 0) {
    reportTo.write(`${file}: ${report.problem}; nothing imported\n`);
    return EXIT.failure;
  }
  const stale = options.keepStale ? [] : staleInBundledMap(report.imported.map((i) => i.entry));
  const kept = report.imported.map((i) => i.entry).filter((entry) => !stale.some((s) => s.entry === entry));
  const json = formatMapJson(kept);
  if (options.out) {
    // Written beside the target, then renamed: a daemon reloading on SIGHUP never reads half a file.
    const temporary = `${options.out}.${process.pid}.tmp`;
    writeFileSync(temporary, json);
    renameSync(temporary, options.out);
  } else {
    process.stdout.write(json);
  }
  reportTo.write(formatReport(report, stale, kept.length, options.out));
  return report.skipped.length === 0 && report.problem === undefined ? EXIT.ok : EXIT.failure;
}

interface Stale {
  readonly entry: MapEntry;
  readonly why: string;
}

/**
 * A layer replaces whole entries, so an imported entry would bring back an onion that the bundled
 * map knows to be retired or dead: such entries are left out unless --keep-stale.
 */
function staleInBundledMap(entries: readonly MapEntry[]): Stale[] {
  const bundled = new Map(loadBundledMap().map((e) => [e.domain, e]));
  const stale: Stale[] = [];
  for (const entry of entries) {
    const known = bundled.get(entry.domain);
    if (!known) continue;
    if (known.status === 'retired' || (known.status === 'no-onion' && known.onion === entry.onion)) {
      stale.push({ entry, why: `${known.status} in the bundled map: ${known.note ?? 'no note'}` });
    }
  }
  return stale;
}

export function formatReport(report: ImportReport, stale: readonly Stale[], written: number, out: string | undefined): string {
  const lines = [`${report.file}: ${report.imported.length} imported, ${report.skipped.length} skipped`];
  if (report.problem !== undefined) lines.push(`  problem: ${report.problem}`);
  if (report.notes.length > 0) {
    lines.push('defects (imported anyway):');
    for (const note of report.notes) lines.push(`  line ${note.line}${note.key ? `, ${note.key}` : ''}: ${note.text}`);
  }
  if (report.skipped.length > 0) {
    lines.push('skipped:');
    for (const skip of report.skipped) lines.push(`  line ${skip.line}${skip.key ? `, ${skip.key}` : ''}: ${skip.reason}`);
  }
  if (stale.length > 0) {
    lines.push('left out (the bundled map knows better; --keep-stale keeps them):');
    for (const { entry, why } of stale) lines.push(`  ${entry.domain}: ${why}`);
  }
  if (written > 0) {
    lines.push('Imported entries are "unverified": their onions were published for server-to-server traffic and may',
      `not accept client logins. Try them with \`xmpp-onion-proxy onionmap check --map ${out ?? 'FILE.json'}\` first.`);
  }
  lines.push(`${out ? `wrote ${out}` : 'written'}: ${written} entries`);
  return `${lines.join('\n')}\n`;
}
