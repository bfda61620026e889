import { readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { importOnionsMap, readOnionsMapFile } from '../../src/onionmap/lua-import.js';
import { parseMapJson } from '../../src/onionmap/map-file.js';
import { formatMapJson } from '../../src/onionmap/map-file-writer.js';
import { onionFromPublicKey } from '../../src/onionmap/onion-address.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/onions-map.lua', import.meta.url));
const DATE = '2025-01-02';
const A = onionFromPublicKey(randomBytes(32));
const B = onionFromPublicKey(randomBytes(32));
/** The same address with one character changed: the checksum no longer matches. */
const CORRUPT = `${A[0] === 'a' ? 'b' : 'a'}${A.slice(1)}`;

t.test('the operators\' file as published: every key imported, defects reported', async (t) => {
  const bytes = readFileSync(FIXTURE);
  t.equal(createHash('sha256').update(bytes).digest('hex'), '89ee6dac0b06a5a04f167f5ad8cf83f937c5e604e63f1e04f091614535e9da3f', 'the fixture is the byte-exact copy');
  t.notOk(bytes.toString().endsWith('\n'), 'and ends without a newline, as upstream');
  const report = readOnionsMapFile(FIXTURE, { date: DATE });
  t.equal(report.problem, undefined);
  t.equal(report.imported.length, 24, 'all 24 keys imported');
  t.equal(report.skipped.length, 0, 'nothing skipped: every onion is a valid v3 address');
  t.equal(new Set(report.imported.map((i) => i.entry.onion)).size, 21, '21 distinct onions');
  t.ok(report.imported.every((i) => i.entry.status === 'unverified'), 'all unverified');
  t.ok(report.imported.every((i) => i.entry.port === 5222), 'the client port is the default, never taken from the file');
  t.ok(report.imported.every((i) => i.entry.source === `Prosody onions_map onions-map.lua, line ${i.line} (imported ${DATE})`), 'each source names the file and line');
  t.ok(report.imported.every((i) => /server-to-server/.test(i.entry.note ?? '')), 'each note says what the onions were for');

  const jabjab = report.imported.find((i) => i.entry.domain === 'jabjab.de');
  t.equal(jabjab?.entry.onion, 'jabjabdea2eewo3gzfurscj2sjqgddptwumlxi3wur57rzf5itje2rid.onion', 'the missing suffix is added');
  t.equal(jabjab?.line, 17);
  for (const domain of ['cock.li', 'e2e.ee']) {
    const entry = report.imported.find((i) => i.entry.domain === domain)?.entry;
    t.equal(entry?.s2sPort, 5222, `${domain}: the string port "5222" is kept as the server-to-server port`);
    t.match(entry?.note, /port "5222" as a string/);
  }
  t.same(
    report.notes.map((n) => [n.line, n.key]),
    [[4, 'cock.li'], [8, 'e2e.ee'], [17, 'jabjab.de']],
    'exactly three defects: two string ports and one missing suffix',
  );
  t.equal(report.imported.filter((i) => i.entry.s2sPort !== undefined).length, 2, 'only the table-form entries carry a port');
  const riseup = report.imported.find((i) => i.entry.domain === 'xmpp.riseup.net');
  t.equal(riseup?.entry.status, 'unverified', 'the import trusts nothing: staleness is for the bundled map to know');

  const json = formatMapJson(report.imported.map((i) => i.entry));
  const back = parseMapJson(json, 'imported.json');
  t.equal(back.length, 24, 'the converted map reads back as a valid user map');
  t.equal(back.find((e) => e.domain === 'cock.li')?.port, 5222);
});

t.test('synthetic edge cases', async (t) => {
  const lua = [
    '-- a comment before the table',
    'onions_map = {',
    `\t["comma.test"] = "${A}",  -- comma separator and a trailing comment`,
    `  ['single.test']\t=\t'${B}';`,
    `\t["TABLE.Test."] = { host = "${A.replace('.onion', '')}", port = 5269 },`,
    `\t["v2.test"] = "ijeeynrc6x2uy5ob.onion";`,
    `\t["corrupt.test"] = "${CORRUPT}";`,
    `\t["malformed.test"] = ;`,
    `\t["badport.test"] = { host = "${A}", port = "xmpp" };`,
    `\t["noport.test"] = { host = "${B}" };`,
    '\t--[[ a long',
    `\t comment with ["hidden.test"] = "${A}"; inside ]]`,
    `\t["dup.test"] = "${A}";`,
    `\t["dup.test"] = "${B}"`,
    '}',
  ].join('\n');
  const report = importOnionsMap(lua, '/somewhere/private/edge.lua', { date: DATE });
  const imported = Object.fromEntries(report.imported.map((i) => [i.entry.domain, i]));
  t.same(Object.keys(imported).sort(), ['comma.test', 'dup.test', 'noport.test', 'single.test', 'table.test'], 'the good entries, normalised');
  t.equal(imported['table.test']?.entry.s2sPort, 5269, 'the table port is the server-to-server port');
  t.equal(imported['table.test']?.entry.port, 5222, 'and not the client port');
  t.equal(imported['table.test']?.entry.onion, A, 'suffix added');
  t.equal(imported['noport.test']?.entry.s2sPort, undefined, 'no port, no s2sPort');
  t.equal(imported['dup.test']?.entry.onion, B, 'the later duplicate wins, as in Lua');
  t.equal(imported['comma.test']?.line, 3);
  t.match(imported['comma.test']?.entry.source, /^Prosody onions_map edge\.lua, line 3/, 'the source names the file, not the private folder');
  const skipped = report.skipped.map((s) => [s.line, s.reason]);
  t.equal(report.skipped.length, 5, 'five skipped');
  t.match(skipped, [
    [6, /v2 onions no longer work/],
    [7, /wrong checksum/],
    [8, /malformed entry: .*found ";"/],
    [9, /port "xmpp" is not a whole number/],
    [13, /replaced by the entry for the same domain on line 14/],
  ]);
  t.notOk(report.imported.some((i) => i.entry.domain === 'hidden.test'), 'nothing inside a comment is read');
});

t.test('a missing separator is read, and reported, as Lua would refuse it', async (t) => {
  const report = importOnionsMap(`onions_map = {\n["a.test"] = "${A}"\n["b.test"] = "${B}";\n}\n`, 'x.lua');
  t.equal(report.imported.length, 2);
  t.match(report.notes, [{ line: 2, text: /no ";" or ","/ }]);
});

t.test('garbage after an entry, or an unclosed string, skips that entry only', async (t) => {
  const report = importOnionsMap(`onions_map = {\n["a.test"] = "${A}" junk;\n["b.test"] = "unclosed;\n["c.test"] = "${B}";\n}`, 'x.lua');
  t.same(report.imported.map((i) => i.entry.domain), ['c.test']);
  t.match(report.skipped, [{ line: 2, reason: /unexpected "junk"/ }, { line: 3, reason: /not closed on its line/ }]);
});

t.test('files that are not an onions_map', async (t) => {
  t.match(importOnionsMap('print("hello")', 'x.lua').problem, /no `onions_map/);
  const open = importOnionsMap(`onions_map = {\n["a.test"] = "${A}";\n`, 'x.lua');
  t.match(open.problem, /opened on line 1 is never closed/);
  t.equal(open.imported.length, 1, 'what was read before is still reported');
  t.match(readOnionsMapFile('/nonexistent/onions.lua').problem, /cannot be read \(ENOENT\)/);
  t.equal(importOnionsMap(`return {\n["a.test"] = "${A}"\n}`, 'x.lua').imported.length, 1, 'a bare returned table is read too');
});

t.test('a whole Prosody config: only the last onions_map assignment counts', async (t) => {
  const config = [
    'VirtualHost "example.org"',
    'modules_enabled = { "onions" }',
    `onions_map = { ["old.test"] = "${A}" }`,
    'http_file_share_expires_after = 60 * 60 * 24 * 7',
    `onions_map = { ["new.test"] = "${B}" }`,
    'Component "muc.example.org" "muc"',
  ].join('\n');
  const report = importOnionsMap(config, 'prosody.cfg.lua');
  t.same(report.imported.map((i) => i.entry.domain), ['new.test']);
});
