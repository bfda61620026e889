import t from 'tap';
import { OnionMap } from '../../src/onionmap/onion-map.js';
import { decideRoute, decideSocksRequest } from '../../src/policy/routing.js';

const ONION = '6voaf7iamjpufgwoulypzwwecsm2nu7j5jpgadav2rfqixmpl4d65kid.onion';
const OTHER_ONION = 'jabjabdea2eewo3gzfurscj2sjqgddptwumlxi3wur57rzf5itje2rid.onion';
/** An onion the map does not know: a client may name it itself. */
const FREE_ONION = 'fzdx522fvinbaqgwxdet45wryluchpplrkkzkry33um5tufkjd3wdaqd.onion';
const map = new OnionMap([
  { domain: 'example.org', onion: ONION, port: 5222, directTlsPort: 5223, status: 'active', origin: 't', https: { hosts: ['upload.example.org'], ports: [5281] } },
  { domain: 'calyx.test', host: 'jabber.calyx.test', port: 5222, status: 'no-onion', origin: 't', https: { hosts: ['share.calyx.test'], ports: [8443] } },
  { domain: 'riseup.net', onion: OTHER_ONION, port: 5222, status: 'retired', note: 'riseup.net retired its XMPP service', origin: 't' },
  { domain: 'local.test', host: '127.0.0.1', port: 15222, status: 'no-onion', origin: 't' },
]);
const opts = { onionOnly: false, allowOtherPorts: false };

t.test('a mapped domain goes to its onion with the STARTTLS policy', async (t) => {
  const d = decideSocksRequest(map, 'example.org', 5222, opts);
  t.match(d, { ok: true, mode: 'starttls', route: { kind: 'onion', host: ONION, port: 5222 } });
});

t.test('the direct-TLS port selects TLS from the first byte', async (t) => {
  t.match(decideSocksRequest(map, 'example.org', 5223, opts), { ok: true, mode: 'direct-tls', route: { host: ONION, port: 5223 } });
  t.match(decideSocksRequest(map, 'unmapped.test', 5223, opts), { ok: true, mode: 'direct-tls', route: { kind: 'clearnet', host: 'unmapped.test', port: 5223 } });
});

t.test('a .onion destination goes through as given; an unmapped name through a Tor exit', async (t) => {
  t.match(decideSocksRequest(map, FREE_ONION.toUpperCase(), 5222, opts), { ok: true, route: { kind: 'onion', host: FREE_ONION } });
  t.match(decideSocksRequest(map, 'unmapped.test', 5222, opts), { ok: true, route: { kind: 'clearnet', host: 'unmapped.test', port: 5222 } });
  t.match(decideSocksRequest(map, 'calyx.test', 5222, opts), { ok: true, route: { kind: 'clearnet', host: 'jabber.calyx.test' } });
});

t.test('refusals carry the RFC 1928 reply and a reason', async (t) => {
  t.match(decideSocksRequest(map, 'example.org', 80, opts), { ok: false, refusal: { socksReply: 2, code: 'socks-port-not-allowed' } });
  t.match(decideSocksRequest(map, 'example.org', 80, { ...opts, allowOtherPorts: true }), { ok: true, mode: 'passthrough', route: { port: 80 } });
  t.match(decideSocksRequest(map, '203.0.113.9', 5222, opts), { ok: false, refusal: { socksReply: 2, code: 'socks-ip-destination' } });
  t.match(decideSocksRequest(map, '127.0.0.1', 5222, opts), { ok: true, route: { host: '127.0.0.1' } }, 'an address a user map names is allowed');
  t.match(decideSocksRequest(map, 'riseup.net', 5222, opts), { ok: false, refusal: { socksReply: 2, code: 'route-retired', text: /retired/ } });
  t.match(decideSocksRequest(map, 'unmapped.test', 5222, { ...opts, onionOnly: true }), { ok: false, refusal: { socksReply: 2, code: 'route-onion-only' } });
  t.match(decideSocksRequest(map, 'ijeeynrc6x2uy5ob.onion', 5222, opts), { ok: false, refusal: { socksReply: 4, code: 'socks-bad-onion', text: /v2/ } });
  t.match(decideSocksRequest(map, 'bad_name!', 5222, opts), { ok: false, refusal: { socksReply: 2, code: 'socks-bad-destination' } });
});

t.test('HTTPS: port 443 and the ports an entry names are TLS only; its names go to its onion where it serves them', async (t) => {
  t.match(decideSocksRequest(map, 'upload.example.org', 5281, opts), { ok: true, mode: 'https', route: { kind: 'onion', host: ONION, port: 5281 }, destination: 'upload.example.org' });
  t.match(decideSocksRequest(map, 'EXAMPLE.org', 5281, opts), { ok: true, mode: 'https', route: { kind: 'onion', host: ONION, port: 5281 } }, 'the domain itself (host-meta)');
  t.match(decideSocksRequest(map, 'example.org', 443, opts), { ok: true, mode: 'https', route: { kind: 'clearnet', host: 'example.org', port: 443 } }, 'the onion does not serve 443: through a Tor exit');
  t.match(decideSocksRequest(map, 'upload.other.test', 443, opts), { ok: true, mode: 'https', route: { kind: 'clearnet', host: 'upload.other.test', port: 443 } }, 'any name at 443, as named');
  t.match(decideSocksRequest(map, 'upload.other.test', 5281, opts), { ok: false, refusal: { code: 'socks-port-not-allowed', socksReply: 2 } }, '5281 is HTTPS only for the names of an entry that says so');
  t.match(decideSocksRequest(map, 'share.calyx.test', 8443, opts), { ok: true, mode: 'https', route: { kind: 'clearnet', host: 'share.calyx.test', port: 8443 } }, 'no onion: a Tor exit to the name as given, TLS only');
  t.match(decideSocksRequest(map, 'share.calyx.test', 8443, { ...opts, onionOnly: true }), { ok: false, refusal: { code: 'route-onion-only' } });
  t.match(decideSocksRequest(map, FREE_ONION, 443, opts), { ok: true, mode: 'https', route: { kind: 'onion', host: FREE_ONION, port: 443 } });
  t.match(decideSocksRequest(map, 'riseup.net', 443, opts), { ok: false, refusal: { code: 'route-retired' } });
  t.match(decideSocksRequest(map, '203.0.113.9', 443, opts), { ok: false, refusal: { code: 'socks-ip-destination' } });
  t.match(decideSocksRequest(map, 'bad_name!', 443, opts), { ok: false, refusal: { code: 'socks-bad-destination' } });
  const onionOnly = { ...opts, onionOnly: true };
  t.match(decideSocksRequest(map, 'upload.example.org', 5281, onionOnly), { ok: true, route: { kind: 'onion' } });
  t.match(decideSocksRequest(map, 'upload.example.org', 443, onionOnly), { ok: false, refusal: { code: 'route-onion-only', text: 'upload.example.org has no usable onion service, and onion-only mode forbids going through a Tor exit. The onion serves no HTTPS on port 443' } });
  t.match(decideSocksRequest(map, 'unmapped.test', 443, onionOnly), { ok: false, refusal: { code: 'route-onion-only', text: /No onion service is known for it$/ } });
});

t.test("the stream's to must be a domain the destination serves", async (t) => {
  const accept = (host: string, to: string): unknown => {
    const d = decideSocksRequest(map, host, 5222, opts);
    if (!d.ok || d.mode !== 'starttls') throw new Error('refused');
    return d.acceptTo(to);
  };
  t.match(accept('example.org', 'example.org'), { ok: true });
  t.match(accept(ONION, 'example.org'), { ok: true }, 'the mapped onion of the to');
  t.match(accept('jabber.calyx.test', 'calyx.test'), { ok: true }, 'the mapped host of the to');
  t.match(accept(FREE_ONION, 'anything.test'), { ok: true }, 'an onion the client asked for itself');
  t.match(accept('example.org', 'evil.test'), { ok: false, refusal: { code: 'socks-to-mismatch', condition: 'host-unknown' } });
  t.match(accept('unmapped.test', 'example.org'), { ok: false, refusal: { code: 'socks-to-mismatch' } });
  t.match(accept(FREE_ONION, 'riseup.net'), { ok: false, refusal: { code: 'route-retired', condition: 'host-gone' } });
});

t.test('a retired onion is refused however it is named: as the destination, or as the stream\'s to', async (t) => {
  t.match(decideSocksRequest(map, OTHER_ONION, 5222, opts), { ok: false, refusal: { code: 'route-retired', socksReply: 2, text: /retired/ } });
  t.match(decideSocksRequest(map, OTHER_ONION.toUpperCase(), 5223, opts), { ok: false, refusal: { code: 'route-retired' } });
  t.match(decideRoute(map, OTHER_ONION, { onionOnly: false }), { ok: false, refusal: { code: 'route-retired', condition: 'host-gone' } });
  t.match(decideRoute(map, ONION, { onionOnly: false }), { ok: true, route: { host: ONION } }, 'an active onion still goes through');
});
