import t from 'tap';
import { normalizeDomain } from '../../src/onionmap/domain.js';

t.test('normalised: lower case, IDNA to ASCII, no trailing dot', async (t) => {
  t.same(normalizeDomain('Jabber.CCC.de.'), { ok: true, domain: 'jabber.ccc.de' });
  t.same(normalizeDomain('bücher.example'), { ok: true, domain: 'xn--bcher-kva.example' });
  t.same(normalizeDomain('XN--BCHER-KVA.example'), { ok: true, domain: 'xn--bcher-kva.example' });
  t.same(normalizeDomain('ÄÖÜ.example'), normalizeDomain('äöü.example'), 'case folding before punycode');
});

t.test('refused: what cannot name an XMPP server', async (t) => {
  t.match(normalizeDomain(''), { ok: false, problem: /empty/ });
  t.match(normalizeDomain('alice@example.org'), { ok: false, problem: /user part/ });
  t.match(normalizeDomain('example.org/phone'), { ok: false, problem: /resource/ });
  t.match(normalizeDomain('127.0.0.1'), { ok: false, problem: /IP address/ });
  t.match(normalizeDomain('[::1]'), { ok: false, problem: /IP address/ });
  t.match(normalizeDomain('-bad.example'), { ok: false, problem: /not a valid host name/ });
  t.match(normalizeDomain('a..b'), { ok: false });
  t.match(normalizeDomain(`${'a'.repeat(64)}.example`), { ok: false });
});
