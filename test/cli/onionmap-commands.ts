import { readFileSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { loadBundledMap } from '../../src/onionmap/bundled.js';
import { parseMapJson } from '../../src/onionmap/map-file.js';
import { onionFromPublicKey } from '../../src/onionmap/onion-address.js';
import { CLI, ISOLATED_ENV, requireBuild, runCli, tempDir } from './built-cli.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/onions-map.lua', import.meta.url));
const bundled = loadBundledMap();
const GOOD = onionFromPublicKey(randomBytes(32));

if (!requireBuild(t)) process.exit(1);

t.test('list shows every bundled entry with its source', async (t) => {
  const result = await runCli(['onionmap', 'list']);
  t.equal(result.code, 0);
  const lines = result.stdout.trimEnd().split('\n');
  t.match(lines[0], /^DOMAIN\s+ONION\s+PORT\s+STATUS\s+SOURCE$/);
  for (const entry of bundled) {
    const line = lines.find((l) => l.startsWith(`${entry.domain} `));
    t.ok(line, `${entry.domain} listed`);
    t.ok(line?.includes(entry.status) && line.endsWith(entry.source ?? '(no source'), `${entry.domain}: status and source shown`);
  }
  t.equal(lines.length, bundled.length + 2, 'header, one line per entry, summary');
  t.match(lines.find((l) => l.startsWith('riseup.net ')), /jukrlvyh\S+\.onion \(kept for reference, never used\)\s+-\s+retired/);
  t.match(lines.find((l) => l.startsWith('calyxinstitute.org ')), /- \(Tor exit to jabber\.calyxinstitute\.org\)\s+5222\s+no-onion/);
  t.match(lines.at(-1), new RegExp(`^${bundled.length} entries from bundled$`));

  const json = await runCli(['onionmap', 'list', '--json']);
  t.equal(json.code, 0);
  const entries = JSON.parse(json.stdout) as Array<{ domain: string; source?: string; origin: string }>;
  t.equal(entries.length, bundled.length);
  t.ok(entries.every((e) => typeof e.source === 'string' && e.origin === 'bundled'), 'every JSON entry has a source');
});

t.test('list with a user file and --map: layered, origins shown', async (t) => {
  const dir = tempDir(t);
  const user = path.join(dir, 'user.json');
  const cli = path.join(dir, 'cli.json');
  writeFileSync(user, JSON.stringify({ 'xmpp.is': { host: 'user.example', source: 'my own notes' }, 'mine.test': { onion: GOOD } }));
  writeFileSync(cli, JSON.stringify({ 'mine.test': { host: 'cli.example' } }));
  const result = await runCli(['onionmap', 'list', '--map', cli], { XMPP_ONION_PROXY_USER_MAP: user });
  t.equal(result.code, 0);
  t.match(result.stdout, new RegExp(`xmpp\\.is\\s+- \\(Tor exit to user\\.example\\).*my own notes \\[from ${user}\\]`));
  t.match(result.stdout, /mine\.test\s+- \(Tor exit to cli\.example\)/, '--map wins over the user file');
  t.match(result.stdout, new RegExp(`${bundled.length + 1} entries from bundled < user < map\n$`));
});

t.test('lookup riseup.net: refused, with the retirement in words', async (t) => {
  const result = await runCli(['onionmap', 'lookup', 'riseup.net']);
  t.equal(result.code, 1);
  t.match(result.stdout, /^riseup\.net: refused\n {2}why: riseup\.net retired its XMPP service in 2023/);
  t.match(result.stdout, /choose another provider/);
  t.match(result.stdout, /onion \(not used\): jukrlvyh/);
  t.match(result.stdout, /source: riseupnet\/riseup_help/);
});

t.test('lookup calyxinstitute.org: a Tor exit, or refused with --onion-only', async (t) => {
  const open = await runCli(['onionmap', 'lookup', 'CalyxInstitute.org.']);
  t.equal(open.code, 0);
  t.match(open.stdout, /^calyxinstitute\.org: through a Tor exit to jabber\.calyxinstitute\.org port 5222\n {2}why: the Calyx Institute never published a v3 onion/);
  const strict = await runCli(['onionmap', 'lookup', 'calyxinstitute.org', '--onion-only']);
  t.equal(strict.code, 1);
  t.match(strict.stdout, /^calyxinstitute\.org: refused\n {2}why: calyxinstitute\.org has no usable onion service, and onion-only mode forbids going through a Tor exit/);
});

t.test('lookup of mapped, unmapped and unusable names', async (t) => {
  const active = await runCli(['onionmap', 'lookup', 'xmpp.is', '--onion-only']);
  t.equal(active.code, 0);
  t.match(active.stdout, /to the onion service 6voaf7\S+\.onion port 5222, through Tor/);
  const unmapped = await runCli(['onionmap', 'lookup', 'example.org']);
  t.equal(unmapped.code, 0);
  t.match(unmapped.stdout, /not in the map: Tor resolves the name at the exit/);
  const jid = await runCli(['onionmap', 'lookup', 'alice@example.org']);
  t.equal(jid.code, 2, 'a JID is a usage error');
  t.match(jid.stderr, /not a usable XMPP domain: it is a JID/);
  const noArgument = await runCli(['onionmap', 'lookup']);
  t.equal(noArgument.code, 2);
});

t.test('verify: a good file exits 0; a bad one lists every problem, each with file and domain', async (t) => {
  const dir = tempDir(t);
  const good = path.join(dir, 'good.json');
  writeFileSync(good, JSON.stringify({ 'a.test': { onion: GOOD }, 'b.test': { host: 'b.example', status: 'no-onion' } }));
  const ok = await runCli(['onionmap', 'verify', good]);
  t.equal(ok.code, 0);
  t.equal(ok.stdout, `${good}: valid, 2 entries (1 active, 0 unverified, 0 retired, 1 no-onion)\n`);

  const bad = path.join(dir, 'bad.json');
  const corrupt = `${GOOD[0] === 'a' ? 'b' : 'a'}${GOOD.slice(1)}`;
  writeFileSync(bad, JSON.stringify({
    'v2.test': { onion: 'ijeeynrc6x2uy5ob.onion' },
    'checksum.test': { onion: corrupt },
    'port.test': { onion: GOOD, port: '5222' },
    'range.test': { onion: GOOD, port: 70000 },
    'fine.test': { onion: GOOD },
  }));
  const result = await runCli(['onionmap', 'verify', bad]);
  t.equal(result.code, 1);
  const lines = result.stdout.trimEnd().split('\n');
  t.equal(lines.length, 5, 'four problems and a summary');
  const expected: Array<[string, RegExp]> = [
    ['v2.test', /v2 onions no longer work/],
    ['checksum.test', /wrong checksum/],
    ['port.test', /"port" must be a whole number from 1 to 65535 \(got "5222"\)/],
    ['range.test', /"port" must be a whole number from 1 to 65535 \(got 70000\)/],
  ];
  expected.forEach(([domain, problem], i) => {
    t.ok(lines[i]?.startsWith(`${bad}: ${domain}: `), `line ${i + 1} names the file and ${domain}`);
    t.match(lines[i], problem);
  });
  t.match(lines[4], /4 problems; the daemon would refuse to start with this file/);

  const missing = await runCli(['onionmap', 'verify', path.join(dir, 'none.json')]);
  t.equal(missing.code, 1);
  t.match(missing.stdout, /none\.json: cannot be read \(ENOENT\)/);
});

t.test('an invalid --map makes list and lookup a usage error naming the file', async (t) => {
  const dir = tempDir(t);
  const bad = path.join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ 'x.test': { onion: 'ijeeynrc6x2uy5ob.onion' } }));
  for (const args of [['list'], ['lookup', 'x.test']]) {
    const result = await runCli(['onionmap', ...args, '--map', bad]);
    t.equal(result.code, 2, args.join(' '));
    t.match(result.stderr, new RegExp(`invalid map ${bad}: x\\.test: .*v2 onions no longer work`));
  }
});

t.test('import of the operators\' file: report, defects, stale entries left out', async (t) => {
  const dir = tempDir(t);
  const out = path.join(dir, 'imported.json');
  const result = await runCli(['onionmap', 'import', FIXTURE, '--out', out]);
  t.equal(result.code, 0);
  t.match(result.stdout, /^.*onions-map\.lua: 24 imported, 0 skipped\n/);
  t.match(result.stdout, /line 4, cock\.li: the port is the string "5222"; read as the server-to-server port 5222/);
  t.match(result.stdout, /line 8, e2e\.ee: the port is the string "5222"/);
  t.match(result.stdout, /line 17, jabjab\.de: the onion is written without the "\.onion" suffix/);
  for (const domain of ['creep.im', 'jabber.de', 'jabber.otr.im', 'jabber.systemli.org', 'xmpp.riseup.net']) {
    t.match(result.stdout, new RegExp(`\\n  ${domain.replace(/\./g, '\\.')}: (retired|no-onion) in the bundled map`), `${domain} left out`);
  }
  t.match(result.stdout, new RegExp(`wrote ${out}: 19 entries\\n$`));
  const entries = parseMapJson(readFileSync(out, 'utf8'), out);
  t.equal(entries.length, 19);
  t.notOk(entries.some((e) => e.domain === 'xmpp.riseup.net'), 'the retired Riseup onion is not brought back');
  t.ok(entries.every((e) => e.status === 'unverified' && e.port === 5222));
  t.equal(entries.find((e) => e.domain === 'cock.li')?.s2sPort, 5222);

  const verify = await runCli(['onionmap', 'verify', out]);
  t.equal(verify.code, 0, 'the output passes verify');

  const keep = await runCli(['onionmap', 'import', FIXTURE, '--keep-stale']);
  t.equal(keep.code, 0);
  t.equal(Object.keys(JSON.parse(keep.stdout) as object).length, 24, 'without --out: all 24 as JSON on stdout');
  t.match(keep.stderr, /24 imported, 0 skipped[\s\S]*written: 24 entries/, 'and the report on stderr');
});

t.test('import of a damaged file: skipped entries with line numbers, exit 1', async (t) => {
  const dir = tempDir(t);
  const lua = path.join(dir, 'damaged.lua');
  writeFileSync(lua, `onions_map = {\n\t["good.test"] = "${GOOD}",\n\t["v2.test"] = "ijeeynrc6x2uy5ob.onion";\n\t["broken.test"] = = "x";\n}`);
  const result = await runCli(['onionmap', 'import', lua, '--out', path.join(dir, 'out.json')]);
  t.equal(result.code, 1);
  t.match(result.stdout, /damaged\.lua: 1 imported, 2 skipped/);
  t.match(result.stdout, /line 3, v2\.test: .*v2 onions no longer work/);
  t.match(result.stdout, /line 4: malformed entry: expected a string or a \{ host = …, port = … \} table as the value, found "="/);
  const nothing = await runCli(['onionmap', 'import', path.join(dir, 'none.lua')]);
  t.equal(nothing.code, 1);
  t.match(nothing.stderr, /cannot be read \(ENOENT\); nothing imported/);
});

t.test('a reader that stops early (list | head) is not an error: exit 0, nothing on stderr', async (t) => {
  // The read end is closed before the command writes: its first write fails with EPIPE.
  const child = spawn(process.execPath, [CLI, 'onionmap', 'list'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...ISOLATED_ENV } });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  t.equal(code, 0);
  t.equal(stderr, '', 'no stack trace');
});
