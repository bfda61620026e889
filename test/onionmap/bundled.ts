import t from 'tap';
import { loadBundledMap } from '../../src/onionmap/bundled.js';
import { validateOnion } from '../../src/onionmap/onion-address.js';
import { OnionMap } from '../../src/onionmap/onion-map.js';
import { decideRoute } from '../../src/policy/routing.js';
import { readOnionsMapFile } from '../../src/onionmap/lua-import.js';
import { fileURLToPath } from 'node:url';

const entries = loadBundledMap();
const map = new OnionMap(entries);
const RISEUP_ONION = 'jukrlvyhgguiedqswc5lehrag2fjunfktouuhi4wozxhb6heyzvshuyd.onion';

t.test('every bundled entry is valid and says where it came from', async (t) => {
  t.equal(entries.length, 36);
  for (const entry of entries) {
    t.ok(entry.source && entry.source.length > 10, `${entry.domain} has a source`);
    t.ok(entry.note, `${entry.domain} has a note`);
    if (entry.onion) t.ok(validateOnion(entry.onion).ok, `${entry.domain}: valid v3 onion`);
  }
  t.same(entries.filter((e) => e.status === 'active').map((e) => e.domain), ['xmpp.is'], 'only xmpp.is is confirmed by its operator');
});

t.test('every key of the operators\' map is in the bundled map, with the same onion', async (t) => {
  const report = readOnionsMapFile(fileURLToPath(new URL('../fixtures/onions-map.lua', import.meta.url)));
  for (const { entry } of report.imported) {
    if (entry.domain === 'jabber.cat') continue; // the documented conflict, below
    t.equal(map.get(entry.domain)?.onion, entry.onion, entry.domain);
    if (entry.s2sPort !== undefined) t.equal(map.get(entry.domain)?.s2sPort, entry.s2sPort, `${entry.domain}: s2s port kept`);
  }
});

t.test('jabber.cat: the sources disagree; the client list\'s onion is used, the other kept in the note', async (t) => {
  const operators = readOnionsMapFile(fileURLToPath(new URL('../fixtures/onions-map.lua', import.meta.url)))
    .imported.find(({ entry }) => entry.domain === 'jabber.cat')!.entry.onion!;
  const entry = map.get('jabber.cat')!;
  t.equal(entry.onion, '7drfpncjeom3svqkyjitif26ezb3xvmtgyhgplcvqa7wwbb4qdbsjead.onion');
  t.not(entry.onion, operators);
  t.ok(entry.note?.includes(operators), 'the operators\' onion is named in the note');
  t.match(entry.source, /coyim\/coyim servers\/known\.go \(2025-12-12\).*qbi\/xmpp-onion-map/);
  t.match(decideRoute(map, 'jabber.cat', { onionOnly: true }), { ok: true, route: { kind: 'onion', host: entry.onion } });
});

t.test('the 2025 sources: eight onions from CoyIM\'s client list, unverified, the stray tab noted', async (t) => {
  const fromCoyim = entries.filter((e) => e.source === 'coyim/coyim servers/known.go (2025-12-12)');
  t.same(fromCoyim.map((e) => e.domain).sort(), [
    'jabber-germany.de', 'jabber.tcpreset.net', 'jabbers.one', 'jabbim.com', 'magicbroccoli.de', 'pimux.de', 'qwik.space', 'skynetcloud.site',
  ]);
  for (const entry of fromCoyim) t.match(entry, { status: 'unverified', port: 5222 }, entry.domain);
  t.match(map.get('skynetcloud.site')?.note, /stray tab/);
  t.match(map.get('xmpp.is')?.note, /5269.*5280.*5281.*80/);
});

t.test('Riseup is retired: the last onion is kept but never routed to', async (t) => {
  for (const domain of ['riseup.net', 'xmpp.riseup.net']) {
    const entry = map.get(domain);
    t.match(entry, { status: 'retired', onion: RISEUP_ONION });
    const decision = decideRoute(map, domain, { onionOnly: false });
    t.match(decision, { ok: false, refusal: { code: 'route-retired', text: new RegExp(`^${domain.replace('.', '\\.')} retired its XMPP service in 2023`) } });
  }
});

t.test('Calyx has no onion: a Tor exit to its clearnet host, refused in onion-only mode', async (t) => {
  for (const domain of ['calyxinstitute.org', 'jabber.calyxinstitute.org']) {
    t.match(decideRoute(map, domain, { onionOnly: false }), {
      ok: true, reason: 'mapped-clearnet', status: 'no-onion', route: { kind: 'clearnet', host: 'jabber.calyxinstitute.org', port: 5222 },
    });
    t.match(decideRoute(map, domain, { onionOnly: true }), { ok: false, refusal: { code: 'route-onion-only', text: /v2 address/ } });
  }
});

t.test('shut-down services are refused; a dead onion of a live service is not used', async (t) => {
  for (const domain of ['creep.im', 'jabber.otr.im', 'jabber.systemli.org']) {
    t.match(decideRoute(map, domain, { onionOnly: false }), { ok: false, refusal: { code: 'route-retired' } }, domain);
  }
  t.match(decideRoute(map, 'jabber.de', { onionOnly: false }), { ok: true, route: { kind: 'clearnet', host: 'jabber.de' } });
  t.match(decideRoute(map, 'xmpp.is', { onionOnly: true }), { ok: true, status: 'active', route: { kind: 'onion', port: 5222 } });
});
