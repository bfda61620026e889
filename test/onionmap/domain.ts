import fc from 'fast-check';
import t from 'tap';
import { toASCII } from 'tr46';
import { normalizeDomain, STRICT_IDNA } from '../../src/onionmap/domain.js';

t.test('normalised: lower case, IDNA to ASCII, no trailing dot', async (t) => {
  t.same(normalizeDomain('Jabber.CCC.de.'), { ok: true, domain: 'jabber.ccc.de' });
  t.same(normalizeDomain('bücher.example'), { ok: true, domain: 'xn--bcher-kva.example' });
  t.same(normalizeDomain('XN--BCHER-KVA.example'), { ok: true, domain: 'xn--bcher-kva.example' });
  t.same(normalizeDomain('ÄÖÜ.example'), normalizeDomain('äöü.example'), 'case folding before punycode');
  t.same(normalizeDomain('ÉVIL.test'), { ok: true, domain: 'xn--vil-9la.test' });
  t.same(normalizeDomain('ｅvil.test'), { ok: true, domain: 'evil.test' }, 'UTS #46 maps full-width letters');
});

t.test('refused: what cannot name an XMPP server', async (t) => {
  t.match(normalizeDomain(''), { ok: false, problem: /empty/ });
  t.match(normalizeDomain('alice@example.org'), { ok: false, problem: /user part/ });
  t.match(normalizeDomain('example.org/phone'), { ok: false, problem: /resource/ });
  t.match(normalizeDomain('127.0.0.1'), { ok: false, problem: /IP address/ });
  t.match(normalizeDomain('[::1]'), { ok: false, problem: /IP address/ });
  t.match(normalizeDomain('foo.123'), { ok: false, problem: /numeric/ });
  t.match(normalizeDomain('-bad.example'), { ok: false, problem: /IDNA 2008/ });
  t.match(normalizeDomain('ab--cd.example'), { ok: false, problem: /IDNA 2008/ }, 'reserved hyphens (RFC 5891 §4.2.3.1)');
  t.match(normalizeDomain('xn--zz.example'), { ok: false, problem: /IDNA 2008/ }, 'invalid punycode');
  t.match(normalizeDomain('a..b'), { ok: false });
  t.match(normalizeDomain(`${'a'.repeat(64)}.example`), { ok: false });
  t.match(normalizeDomain(`${'a.'.repeat(127)}ab`), { ok: false }, 'longer than 253 characters');
});

t.test('never a URL parser: what WHATWG cuts or drops is refused, by code point', async (t) => {
  const cases: Array<[string, string]> = [
    ['x\\evil.test', 'U+005C'], ['evil.test?pw=SECRET', 'U+003F'], ['evil.test#frag', 'U+0023'], ['ev\nil.test', 'U+000A'],
    ['ev\til.test', 'U+0009'], ['evil.test\r', 'U+000D'], ['exa mple.test', 'U+0020'], ['ev%69l.test', 'U+0025'], ['_xmpp.test', 'U+005F'],
    ['evil.test:5222', 'U+003A'], ['ex\u00adample.test', 'U+00AD'], ['ex\u2060ample.test', 'U+2060'], ['e\ufe0fvil.test', 'U+FE0F'],
  ];
  for (const [raw, named] of cases) {
    const result = normalizeDomain(raw);
    t.match(result, { ok: false, problem: new RegExp(named.replace('+', '\\+')) }, `${JSON.stringify(raw)} refused, naming ${named}`);
  }
});

t.test('a refusal never repeats the name it refused (its words go to the log)', async (t) => {
  fc.assert(fc.property(fc.string({ unit: 'grapheme', minLength: 3, maxLength: 40 }), (raw) => {
    const result = normalizeDomain(`zq${raw}`);
    return result.ok || !result.problem.includes(`zq${raw}`.slice(0, 4));
  }), { numRuns: 2000 });
  t.pass('2000 random names: no refusal quotes one');
});

t.test('the result is a fixed point: what is accepted once is accepted unchanged again', async (t) => {
  fc.assert(fc.property(fc.domain(), (raw) => {
    const once = normalizeDomain(raw);
    if (!once.ok) return true;
    const twice = normalizeDomain(once.domain);
    return twice.ok && twice.domain === once.domain;
  }), { numRuns: 2000 });
  t.pass('2000 generated domains');
});

t.test('the fast path for plain ASCII names gives what strict UTS #46 gives, refusals included', async (t) => {
  const label = fc.stringMatching(/^[A-Za-z0-9-]{1,12}$/);
  fc.assert(fc.property(fc.array(label, { minLength: 1, maxLength: 4 }), (labels) => {
    const name = labels.join('.');
    const strict = toASCII(name, STRICT_IDNA);
    const ours = normalizeDomain(name);
    if (strict === null) return !ours.ok;
    const numeric = /^[0-9]+$/.test(strict.split('.').at(-1) ?? '');
    return numeric ? !ours.ok : ours.ok && ours.domain === strict;
  }), { numRuns: 5000 });
  t.pass('5000 ASCII names: the same result with and without the fast path');
});
