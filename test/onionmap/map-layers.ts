import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import { loadLayeredMap } from '../../src/onionmap/load.js';
import { MapFileError } from '../../src/common/errors.js';
import { resolveMapLayers, SYSTEM_MAP_FILE } from '../../src/onionmap/map-layers.js';
import { onionFromPublicKey } from '../../src/onionmap/onion-address.js';
import { loadBundledMap } from '../../src/onionmap/bundled.js';

const [SYSTEM, USER, CLI] = [0, 1, 2].map(() => onionFromPublicKey(randomBytes(32))) as [string, string, string];

function tempDir(t: Test): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'xop-layers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function write(file: string, map: Record<string, unknown>): string {
  writeFileSync(file, JSON.stringify(map));
  return file;
}

t.test('paths: defaults, XDG, and overrides that keep tests away from /etc and ~', async (t) => {
  t.same(resolveMapLayers({ env: { HOME: '/home/amnesia' } }), [
    { kind: 'system', file: SYSTEM_MAP_FILE, optional: true },
    { kind: 'user', file: '/home/amnesia/.config/xmpp-onion-proxy/onions.json', optional: true },
  ]);
  t.same(resolveMapLayers({ env: { HOME: '/h', XDG_CONFIG_HOME: '/x' }, mapFile: 'm.json' }).map((l) => l.file), [
    SYSTEM_MAP_FILE, '/x/xmpp-onion-proxy/onions.json', 'm.json',
  ]);
  t.equal(resolveMapLayers({ env: { HOME: '/h', XDG_CONFIG_HOME: 'relative' } })[1]?.file, '/h/.config/xmpp-onion-proxy/onions.json', 'a relative XDG_CONFIG_HOME is ignored, as the spec says');
  t.same(resolveMapLayers({ env: { XMPP_ONION_PROXY_SYSTEM_MAP: '', XMPP_ONION_PROXY_USER_MAP: '' } }), [], 'empty overrides turn the layers off');
  t.same(resolveMapLayers({ env: { XMPP_ONION_PROXY_SYSTEM_MAP: '/s.json', XMPP_ONION_PROXY_USER_MAP: '/u.json' }, mapFile: '/m.json' }), [
    { kind: 'system', file: '/s.json', optional: true },
    { kind: 'user', file: '/u.json', optional: true },
    { kind: 'map', file: '/m.json', optional: false },
  ]);
  t.same(resolveMapLayers({ env: {} }).map((l) => l.kind), ['system'], 'no HOME, no XDG: no user layer');
});

t.test('bundled < system < user < --map, each replacing whole entries', async (t) => {
  const dir = tempDir(t);
  const env = { XMPP_ONION_PROXY_SYSTEM_MAP: path.join(dir, 'system.json'), XDG_CONFIG_HOME: path.join(dir, 'config') };
  const userFile = path.join(dir, 'config', 'xmpp-onion-proxy', 'onions.json');
  write(env.XMPP_ONION_PROXY_SYSTEM_MAP, {
    'xmpp.is': { onion: SYSTEM, note: 'from system' },
    'riseup.net': { host: 'xmpp.example.net', note: 'an admin overrides the retirement' },
    'system-only.test': { onion: SYSTEM },
  });
  const layers = () => resolveMapLayers({ env, mapFile: path.join(dir, 'cli.json') });
  write(path.join(dir, 'cli.json'), { 'cli-only.test': { onion: CLI }, 'both.test': { onion: CLI } });

  let loaded = loadLayeredMap({ layers: layers() });
  t.same(loaded.used, ['bundled', 'system', 'map'], 'a missing user file is simply not a layer');
  t.equal(loaded.map.get('xmpp.is')?.onion, SYSTEM, 'system over bundled');
  t.match(loaded.map.get('riseup.net'), { status: 'no-onion', host: 'xmpp.example.net' }, 'the whole entry is replaced, status included');
  t.equal(loaded.map.get('xmpp.is')?.origin, env.XMPP_ONION_PROXY_SYSTEM_MAP, 'origin names the file');
  t.equal(loaded.map.get('riseup.net')?.note, 'an admin overrides the retirement');

  mkdirSync(path.dirname(userFile), { recursive: true });
  write(userFile, { 'xmpp.is': { onion: USER }, 'both.test': { onion: USER } });
  loaded = loadLayeredMap({ layers: layers() });
  t.same(loaded.used, ['bundled', 'system', 'user', 'map'], 'a user file created later is picked up on the next load');
  t.equal(loaded.map.get('xmpp.is')?.onion, USER, 'user over system');
  t.equal(loaded.map.get('both.test')?.onion, CLI, '--map over user');
  t.equal(loaded.map.get('system-only.test')?.onion, SYSTEM, 'lower layers still fill in');
  t.equal(loaded.map.get('calyxinstitute.org')?.origin, 'bundled');
});

t.test('an invalid layer fails the whole load; a missing --map is an error', async (t) => {
  const dir = tempDir(t);
  const system = write(path.join(dir, 'system.json'), { 'bad.test': { onion: 'ijeeynrc6x2uy5ob.onion' } });
  const env = { XMPP_ONION_PROXY_SYSTEM_MAP: system, XMPP_ONION_PROXY_USER_MAP: '' };
  const error = (() => {
    try {
      loadLayeredMap({ layers: resolveMapLayers({ env }) });
    } catch (caught) {
      return caught;
    }
    return undefined;
  })();
  t.ok(error instanceof MapFileError, 'a MapFileError');
  t.match(error, { file: system, message: /bad\.test: .*v2 onions no longer work/ }, 'naming the file, the domain and the problem');
  const missing = path.join(dir, 'missing.json');
  t.throws(() => loadLayeredMap({ layers: resolveMapLayers({ env: { XMPP_ONION_PROXY_SYSTEM_MAP: '' }, mapFile: missing }) }),
    { name: 'MapFileError', message: new RegExp(`${missing}: cannot be read \\(ENOENT\\)`) });
  t.equal(loadLayeredMap({ files: [] }).map.size, loadBundledMap().length, 'the old { files } form still works');
});
