import t from 'tap';
import { MapFileError } from '../../src/common/errors.js';
import { parseMapJson } from '../../src/onionmap/map-file.js';
import { formatMapJson } from '../../src/onionmap/map-file-writer.js';
import { OnionMap } from '../../src/onionmap/onion-map.js';
import { decideRoute } from '../../src/policy/routing.js';

const GOOD = '6voaf7iamjpufgwoulypzwwecsm2nu7j5jpgadav2rfqixmpl4d65kid.onion';
const CORRUPT = `7${GOOD.slice(1)}`;

function problemsOf(text: string, file = '/tmp/user-map.json'): MapFileError {
  try {
    parseMapJson(text, file);
  } catch (error) {
    if (error instanceof MapFileError) return error;
    throw error;
  }
  throw new Error('no error');
}

t.test('a valid map, with defaults filled in', async (t) => {
  const entries = parseMapJson(JSON.stringify({
    'Example.ORG.': { onion: GOOD.toUpperCase() },
    'calyx.test': { host: 'jabber.calyx.test' },
    'tls.test': { onion: GOOD, port: 5223, directTlsPort: 5223, s2sPort: 5269, status: 'unverified', note: 'n', source: 's' },
  }), 'f.json');
  t.match(entries, [
    { domain: 'example.org', onion: GOOD, port: 5222, status: 'active', origin: 'f.json' },
    { domain: 'calyx.test', host: 'jabber.calyx.test', port: 5222, status: 'no-onion' },
    { domain: 'tls.test', port: 5223, directTlsPort: 5223, s2sPort: 5269, status: 'unverified' },
  ]);
});

t.test('every problem is collected, each naming the file, the domain and the problem', async (t) => {
  const error = problemsOf(JSON.stringify({
    'v2.test': { onion: 'ijeeynrc6x2uy5ob.onion' },
    'checksum.test': { onion: CORRUPT },
    'stringport.test': { onion: GOOD, port: '5222' },
    'zeroport.test': { onion: GOOD, port: 0 },
    'bigport.test': { onion: GOOD, port: 65536 },
    'fraction.test': { onion: GOOD, s2sPort: 5269.5 },
    'field.test': { onion: GOOD, prot: 5222 },
    'status.test': { onion: GOOD, status: 'alive' },
    'needsonion.test': { status: 'active' },
    'alice@jid.test': { onion: GOOD },
    'dup.test': { onion: GOOD },
    'DUP.test.': { onion: GOOD },
    'notobject.test': 'x.onion',
  }));
  t.equal(error.code, 'XOP_ERR_MAP_FILE');
  t.equal(error.file, '/tmp/user-map.json');
  t.match(error.message, /^\/tmp\/user-map\.json: 12 problems:/, 'the message starts with the file');
  t.match(error.problems, [
    /^v2\.test: .*v2 onions no longer work/,
    /^checksum\.test: .*wrong checksum/,
    /^stringport\.test: "port" must be a whole number from 1 to 65535 \(got "5222"\)/,
    /^zeroport\.test: "port" must be a whole number/,
    /^bigport\.test: "port" must be a whole number.*65536/,
    /^fraction\.test: "s2sPort" must be a whole number/,
    /^field\.test: unknown field "prot"/,
    /^status\.test: status must be one of active, unverified, retired, no-onion/,
    /^needsonion\.test: status "active" needs an "onion"/,
    /^alice@jid\.test: not a usable XMPP domain/,
    /^DUP\.test\.: the domain dup\.test appears more than once/,
    /^notobject\.test: expected an object/,
  ]);
  t.equal(error.problems.length, 12, 'one line per problem, thirteen keys (dup.test itself is fine)');
});

t.test('pipelining and HTTPS services are read, written back the same, and checked', async (t) => {
  const text = JSON.stringify({
    'slow.test': { onion: GOOD, pipelining: false },
    'upload.test': { onion: GOOD, https: { hosts: ['Upload.Upload.TEST'], ports: [5281, 443] } },
    'clear.test': { host: 'xmpp.clear.test', https: { ports: [8443] } },
  });
  const entries = parseMapJson(text, 'f.json');
  t.match(entries, [
    { domain: 'slow.test', pipelining: false },
    { domain: 'upload.test', https: { hosts: ['upload.upload.test'], ports: [5281, 443] } },
    { domain: 'clear.test', https: { hosts: [], ports: [8443] } },
  ]);
  t.same(parseMapJson(formatMapJson(entries), 'f.json'), entries, 'formatMapJson keeps both');
  t.match(decideRoute(new OnionMap(entries), 'slow.test', { onionOnly: false }), { ok: true, pipelining: false }, 'the entry turns pipelining off');
  const error = problemsOf(JSON.stringify({
    'b.test': { onion: GOOD, https: { hosts: ['bad_name'], ports: [5281] } },
    'c.test': { onion: GOOD, https: { ports: [] } },
    'd.test': { onion: GOOD, https: { ports: [5281], path: '/x' } },
  }));
  t.match(error.problems, [/^b\.test: https host "bad_name" is not usable/, /^c\.test: /, /^d\.test: /]);
});

t.test('problems with the file as a whole', async (t) => {
  t.match(problemsOf('{ not json', 'a.json').problems, [/not valid JSON/]);
  t.match(problemsOf('[]', 'a.json').problems, [/expected a JSON object keyed by XMPP domain/]);
});
