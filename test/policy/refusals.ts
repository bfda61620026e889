import t from 'tap';
import { REFUSALS, refusal, type RefusalCode } from '../../src/policy/refusals.js';

const CANARY = 'canary.example.onion';
/** Arguments that can carry a name the client (or the map) gave: the log's words must never repeat them. */
const NAMED = new Set(['domain', 'asked', 'to', 'note', 'why']);
/**
 * Codes whose `problem` is about an onion and may quote it. A bad domain's problem never quotes
 * the name (test/onionmap/domain.ts), so those codes log it.
 */
const PROBLEM_NAMES = new Set(['socks-bad-onion', 'route-bad-onion']);

t.test('no refusal puts a name the client sent into the log', async (t) => {
  const codes = Object.keys(REFUSALS) as RefusalCode[];
  t.ok(codes.length > 60, `${codes.length} refusals in the catalogue`);
  for (const code of codes) {
    const args = new Proxy({}, {
      get: (_target, key) => (NAMED.has(String(key)) || (key === 'problem' && PROBLEM_NAMES.has(code)) ? CANARY : 'x'),
      has: () => false,
    });
    const made = (refusal as (c: RefusalCode, a: unknown) => ReturnType<typeof refusal>)(code, args);
    t.equal(made.code, code);
    t.notMatch(made.log, CANARY, `${code}: the log's words name no domain`);
    t.ok(made.text.length > 0, `${code}: the client's words`);
  }
});

t.test('the client may read the domain it asked for; the log may not', async (t) => {
  const made = refusal('server-no-starttls', { domain: 'example.org' });
  t.equal(made.text, 'server example.org did not offer STARTTLS; refusing to continue without encryption (nothing was sent to it)');
  t.equal(made.log, 'the server did not offer STARTTLS');
  t.equal(made.condition, 'policy-violation');
  t.equal(refusal('route-retired', { domain: 'riseup.net' }).socksReply, 0x02, 'the SOCKS door answers a retired domain with 0x02');
  t.equal(refusal('onion-not-found', { place: 'onion', words: 'w' }).socksReply, 0x04);
});
