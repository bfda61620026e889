/**
 * Exact names (issue 13, items 1, 2 and 6): a server name is parsed as an RFC 7622 domainpart with
 * strict IDNA 2008, never by a URL parser that cuts at `?#\/` or drops tabs and newlines; SOCKS
 * host bytes are UTF-8 or refused; and no refusal of a name writes that name at info or warn
 * (settleArena scans every scenario's log for names).
 */
import {
  clientHeaderIn, DOMAIN, FEATURES_OUT, HONEST_DOMAIN, NS_STREAMS, ourError, serverHeaderOut, upstreamOpening,
} from './adversary-arena.js';
import { expectClosed, sameText, type Scenario } from './adversary-scenario.js';
import {
  connectName, greeting, NO_AUTH, OPENED, refusedReason, refusedWith, reply, serveHonestSocks,
} from './adversary-scenarios-socks.js';

const IDN = 'xn--vil-9la.test';
const RETIRED = 'retired.test';
const RETIRED_ONION = 'jukrlvyhgguiedqswc5lehrag2fjunfktouuhi4wozxhb6heyzvshuyd.onion';
const ONION = '6voaf7iamjpufgwoulypzwwecsm2nu7j5jpgadav2rfqixmpl4d65kid.onion';
const ENTRIES = [
  { domain: DOMAIN, host: `xmpp.${DOMAIN}` },
  { domain: HONEST_DOMAIN, host: `xmpp.${HONEST_DOMAIN}` },
  { domain: IDN, host: `xmpp.${DOMAIN}` },
  { domain: RETIRED, onion: RETIRED_ONION, status: 'retired' as const, note: 'retired.test retired its XMPP service' },
];

/** The raw attribute text of `to`, exactly as an attacker writes it, with the code point the refusal names. */
const BAD_TO: ReadonlyArray<readonly [string, string]> = [
  ['x\\evil.test', 'U+005C'],
  ['evil.test?pw=SECRET', 'U+003F'],
  ['evil.test#frag', 'U+0023'],
  ['evil.test\\riseup.net', 'U+005C'],
  ['ev&#10;il.test', 'U+000A'],
  ['ev&#9;il.test', 'U+0009'],
  ['evil.test&#13;', 'U+000D'],
  ['evil.test:5222', 'U+003A'],
  ['ev%69l.test', 'U+0025'],
  ['ev\u00adil.test', 'U+00AD'],
];

const header = (to: string): string =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAMS}' to='${to}' version='1.0'>`;

export const nameScenarios: Scenario[] = [
  {
    group: 'names',
    name: `connect-server door: ${BAD_TO.length} names a URL parser would cut or clean (\\ ? # : % tab newline soft hyphen) are refused, Tor never asked`,
    arena: { entries: ENTRIES },
    async run(t, arena) {
      for (const [to, named] of BAD_TO) {
        const c = await arena.client();
        c.write(header(to.replace('SECRET', arena.secrets.password)));
        await expectClosed(t, c, to);
        const problem = named === 'U+00AD' ? `it contains ${named}, an invisible character` : `it contains ${named}, which no domain name can hold`;
        sameText(t, c.text(), ourError('host-unknown', `the server name your client asked for cannot be used: ${problem}`, { id: c.id }),
          `to='${to}': host-unknown, naming ${named}`);
      }
      t.same(arena.socks.requests, [], 'Tor was never asked for any of them');
      t.equal(arena.upstream.peers.length, 0, 'no server was reached');
      await arena.serveHonest(t);
    },
  },
  {
    group: 'names',
    name: 'connect-server door: an internationalised name (ÉVIL.test) is mapped by its IDNA 2008 form, and only that form leaves',
    arena: { entries: ENTRIES },
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn('ÉVIL.test', `${arena.secrets.local}@évil.test`));
      await c.waitFor(FEATURES_OUT);
      t.match(arena.socks.requests, [{ host: `xmpp.${DOMAIN}`, port: 5222 }], "Tor was asked for the map's host for xn--vil-9la.test");
      sameText(t, c.text(), serverHeaderOut(IDN) + FEATURES_OUT, 'client: the server answered for the IDNA form');
      const server = arena.upstream.peers[0]!;
      sameText(t, server.text(), upstreamOpening(IDN), 'server: our opening, to the A-label');
      c.socket.end();
      await expectClosed(t, c, 'client');
    },
  },
  {
    group: 'names',
    name: 'SOCKS door: destinations a URL parser would cut (evil.test\\riseup.net, riseup.net?x, evil.test#) get reply 0x02, Tor never asked',
    arena: { entries: ENTRIES },
    async run(t, arena) {
      for (const host of ['evil.test\\riseup.net', 'riseup.net?x', 'evil.test#', 'ev\til.test', 'ev\nil.test']) {
        const c = await arena.socksClient();
        c.write(Buffer.concat([greeting(0), connectName(host, 5222)]));
        await refusedWith(t, c, Buffer.concat([NO_AUTH, reply(2)]), JSON.stringify(host));
      }
      t.same(arena.socks.requests, [], 'Tor was never asked');
      refusedReason(t, arena, 'socks-bad-destination');
      await serveHonestSocks(t, arena);
    },
  },
  {
    group: 'names',
    name: 'SOCKS door: the UTF-8 bytes of évil.test are the mapped xn--vil-9la.test, not a Latin-1 reading of them',
    arena: { entries: ENTRIES },
    async run(t, arena) {
      const c = await arena.socksClient();
      c.write(Buffer.concat([greeting(0), connectName(Buffer.from('évil.test', 'utf8'), 5222)]));
      await c.waitFor(OPENED);
      c.write(clientHeaderIn('évil.test'));
      await c.waitFor(FEATURES_OUT);
      t.match(arena.socks.requests, [{ host: `xmpp.${DOMAIN}`, port: 5222 }], "Tor was asked for the map's host for xn--vil-9la.test");
      sameText(t, arena.upstream.peers[0]!.text(), upstreamOpening(IDN), 'server: our opening, to the A-label');
      c.socket.end();
      await expectClosed(t, c, 'client');
    },
  },
  {
    group: 'names',
    name: 'SOCKS door: a destination that is not UTF-8 (Latin-1 évil.test, a lone continuation byte) gets reply 0x02, Tor never asked',
    arena: { entries: ENTRIES },
    async run(t, arena) {
      for (const host of [Buffer.from('évil.test', 'latin1'), Buffer.from([0x65, 0x80, 0x2e, 0x74, 0x65, 0x73, 0x74]), Buffer.from([0xc3, 0x28, 0x2e, 0x74])]) {
        const c = await arena.socksClient();
        c.write(Buffer.concat([greeting(0), connectName(host, 5222)]));
        await refusedWith(t, c, Buffer.concat([NO_AUTH, reply(2)]), host.toString('hex'));
      }
      t.same(arena.socks.requests, [], 'Tor was never asked');
      t.match(arena.daemon.logs().filter((l) => l.msg === 'refused'), [{ reason: 'socks-handshake', problem: 'the destination name is not valid UTF-8' }],
        'the log says why, in words');
      await serveHonestSocks(t, arena);
    },
  },
  {
    group: 'names',
    name: 'SOCKS door, --onion-only: an unmapped domain, a retired domain and an onion with a subdomain are refused, no name at info or warn',
    arena: { entries: ENTRIES, daemon: { onionOnly: true } },
    async run(t, arena) {
      for (const [host, code] of [['unmapped.test', 'route-onion-only'], [RETIRED, 'route-retired'], [`xmpp.${ONION}`, 'socks-bad-onion']] as const) {
        const c = await arena.socksClient();
        c.write(Buffer.concat([greeting(0), connectName(host, 5222)]));
        await refusedWith(t, c, Buffer.concat([NO_AUTH, reply(code === 'socks-bad-onion' ? 4 : 2)]), host);
        t.match(arena.daemon.logs().filter((l) => l.msg === 'refused').at(-1), { reason: code }, `${host}: the log says ${code}`);
      }
      t.same(arena.socks.requests, [], 'Tor was never asked');
    },
  },
  {
    group: 'names',
    name: 'connect-server door, --onion-only: an unmapped domain, a retired domain, its onion and an onion with a subdomain are refused, no name at info or warn',
    arena: { entries: ENTRIES, daemon: { onionOnly: true } },
    async run(t, arena) {
      const cases = [
        ['unmapped.test', 'policy-violation', 'route-onion-only'],
        [RETIRED, 'host-gone', 'route-retired'],
        [RETIRED_ONION, 'host-gone', 'route-retired'],
        [`xmpp.${ONION}`, 'host-unknown', 'route-bad-onion'],
      ] as const;
      for (const [to, condition, code] of cases) {
        const c = await arena.client();
        c.write(header(to));
        await expectClosed(t, c, to);
        t.match(c.text(), new RegExp(`<${condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>`), `${to}: ${condition}`);
        t.match(arena.daemon.logs().filter((l) => l.msg === 'refused').at(-1), { reason: code }, `${to}: the log says ${code}`);
      }
      t.same(arena.socks.requests, [], 'Tor was never asked');
    },
  },
];
