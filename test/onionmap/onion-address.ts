import { randomBytes } from 'node:crypto';
import t from 'tap';
import { onionFromPublicKey, validateOnion } from '../../src/onionmap/onion-address.js';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** Published by operators (see data/NOTICE.md); known good v3 addresses. */
const KNOWN_GOOD = [
  '6voaf7iamjpufgwoulypzwwecsm2nu7j5jpgadav2rfqixmpl4d65kid.onion',
  'jukrlvyhgguiedqswc5lehrag2fjunfktouuhi4wozxhb6heyzvshuyd.onion',
  'creep7nonbdm4nad2qbmri7z32ajg2l4vcwvzpxnty6wupvc5vfreoad.onion',
];

t.test('known-good v3 addresses pass, in any case, with or without the suffix', async (t) => {
  for (const onion of KNOWN_GOOD) {
    t.same(validateOnion(onion), { ok: true, onion });
    t.same(validateOnion(onion.toUpperCase()), { ok: true, onion }, 'upper case is normalised');
    t.same(validateOnion(onion.replace('.onion', '')), { ok: true, onion }, 'the suffix is added');
  }
  const generated = onionFromPublicKey(randomBytes(32));
  t.same(validateOnion(generated), { ok: true, onion: generated }, 'an address built from a fresh key');
});

t.test('flipping any one character is caught', async (t) => {
  for (const good of [...KNOWN_GOOD, onionFromPublicKey(randomBytes(32))]) {
    const name = good.slice(0, 56);
    for (let i = 0; i < 56; i++) {
      const was = name[i] as string;
      const other = BASE32[(BASE32.indexOf(was) + 1 + (i % 31)) % 32] as string;
      const flipped = `${name.slice(0, i)}${other}${name.slice(i + 1)}.onion`;
      const result = validateOnion(flipped);
      if (result.ok) {
        t.fail(`${flipped} accepted`);
        continue;
      }
      // Characters 54 and 55 hold the version byte's bits: a flip there may be caught as a bad version first.
      const expected = i < 54 ? /wrong checksum/ : /wrong checksum|version byte/;
      if (!expected.test(result.problem)) t.fail(`position ${i}: ${result.problem}`);
    }
  }
  t.pass('56 positions × 4 addresses rejected with the checksum (or version) message');
  const one = KNOWN_GOOD[0] as string;
  const flipped = `${one.slice(0, 10)}${one[10] === 'a' ? 'b' : 'a'}${one.slice(11)}`;
  t.match(validateOnion(flipped), { ok: false, problem: /has a wrong checksum/ });
});

t.test('everything else that is not a v3 address', async (t) => {
  t.match(validateOnion('ijeeynrc6x2uy5ob.onion'), { ok: false, problem: /v2 onion address, and v2 onions no longer work/ });
  t.match(validateOnion('ijeeynrc6x2uy5ob'), { ok: false, problem: /v2 onions no longer work/ });
  t.match(validateOnion(`${'a'.repeat(55)}.onion`), { ok: false, problem: /55 characters, expected 56/ });
  t.match(validateOnion(`${'a'.repeat(55)}1.onion`), { ok: false, problem: /not base32/ });
  t.match(validateOnion(`muc.${KNOWN_GOOD[0]}`), { ok: false, problem: /subdomain/ });
  t.match(validateOnion(''), { ok: false });
});
