/**
 * Generated negotiation transcripts for property-based tests (fast-check), a driver that feeds
 * them to the Negotiator under any chunking, and the invariants every run must keep.
 *
 * The invariants, precisely (checked by `violations()`):
 *  1. No exception, ever.
 *  2. At most one decision action (refuse, close, start-relay), and no action at all after it;
 *     with a final timeout appended (what the session's timer does), exactly one.
 *  3. To the server, before the relay, the daemon sends nothing but a prefix (in whole actions) of
 *     U + STARTTLS, where U is our own canonical header (normalised domain, version 1.0, an
 *     optional well-formed language tag); only after the single `connect`. So nothing of any
 *     client element other than <starttls/> (and no client marker) ever reaches the server.
 *  4. The relay's preamble (the held ClientHello) is well-framed TLS starting with a handshake,
 *     and exactly the client's last bytes before the relay started.
 *  5. The client receives, in this order and each at most once: a re-serialised stream header,
 *     the canonical STARTTLS-required features, <proceed/>, then a final stream error (ours, or the
 *     server's condition and text re-written) or a bare stream close. <proceed/> iff Relaying, and
 *     then nothing after it. Nothing from a server's features (no server marker) reaches it.
 */
import { domainToASCII } from 'node:url';
import fc from 'fast-check';
import type { Action, Phase } from '../../src/policy/negotiation.js';
import { refusal } from '../../src/policy/refusals.js';
import { Negotiator } from '../../src/policy/negotiator.js';
import { testRouting } from './policy-driver.js';
import { helloRecord } from './tls-hello.js';

export const CLIENT_MARK = 'CLI_MARK';
export const SERVER_MARK = 'SRV_MARK';
const NS_S = 'http://etherx.jabber.org/streams';
const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
const NS_ERR = 'urn:ietf:params:xml:ns:xmpp-streams';
export const CANON = {
  decl: "<?xml version='1.0'?>",
  starttls: `<starttls xmlns='${NS_TLS}'/>`,
  proceed: `<proceed xmlns='${NS_TLS}'/>`,
  features: `<stream:features><starttls xmlns='${NS_TLS}'><required/></starttls></stream:features>`,
};
const LANGUAGE_TAG = /^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8}){0,7}$/;

export type Step =
  | { readonly from: 'client' | 'server'; readonly data: Buffer }
  | { readonly event: 'timeout' | 'client-eof' | 'server-eof' | 'upstream-failed' };

export interface ValidTranscript {
  readonly steps: readonly Step[];
  readonly expectToServer: Buffer;
  readonly expectToClient: string;
  /** Index in `steps` of the server step that holds <proceed/>. */
  readonly proceedStep: number;
}

// ---- generators -------------------------------------------------------------------------

function escapeXml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** An attribute value as a peer might write it: entities, quotes of the other kind, astral characters. */
const attrValue = fc
  .array(fc.constantFrom('a', 'Z', '0', '-', '.', '&', '<', '>', '"', "'", 'é', 'ß', '€', '中', '🧅', '𝄞', ' ', '_'), { maxLength: 12 })
  .map((chars) => chars.join(''));

function writeAttr(name: string, value: string, quote: "'" | '"'): string {
  const encoded = value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(quote === "'" ? /'/g : /"/g, quote === "'" ? '&apos;' : '&quot;');
  return `${name}=${quote}${encoded}${quote}`;
}

const quoteArb = fc.constantFrom<"'" | '"'>("'", '"');
const spaceArb = fc.constantFrom(' ', '  ', '\n', '\t', '\r\n ');
const wsArb = fc.constantFrom('', ' ', '\n', '\r\n', '\t', '  \n');
const declArb = fc.constantFrom('', "<?xml version='1.0'?>", '<?xml version="1.0" encoding="UTF-8"?>\n', "<?xml version='1.0' encoding='utf-8' standalone='yes'?>");
const domainArb = fc.constantFrom('example.test', 'EXAMPLE.Test', 'example.test.', 'exämple.test', 'bücher.example', 'other.example', '例え.テスト');
const langArb = fc.constantFrom<string | undefined>(undefined, 'en', 'de-CH', 'zh-Hant-TW', 'x-klingon', "en'>", '🧅', 'e'.repeat(20), 'en_US', '');

/** Opening tag with shuffled attributes. */
function openTag(name: string, attrs: Array<[string, string]>, quote: "'" | '"', sep: string, order: number[]): string {
  const ordered = order.map((i) => attrs[i % attrs.length]!).filter((a, i, all) => all.indexOf(a) === i);
  for (const a of attrs) if (!ordered.includes(a)) ordered.push(a);
  return `<${name}${ordered.map(([n, v]) => sep + writeAttr(n, v, quote)).join('')}>`;
}

const orderArb = fc.array(fc.nat(6), { minLength: 6, maxLength: 6 });

const clientHeaderArb = fc.record({ decl: declArb, domain: domainArb, lang: langArb, from: fc.boolean(), quote: quoteArb, sep: spaceArb, order: orderArb, prefix: fc.constantFrom('stream', 's') })
  .map(({ decl, domain, lang, from, quote, sep, order, prefix }) => {
    const attrs: Array<[string, string]> = [['to', domain], ['version', '1.0'], ['xmlns', 'jabber:client'], [`xmlns:${prefix}`, NS_S]];
    if (from) attrs.push(['from', `${CLIENT_MARK}@${domain}`]);
    if (lang !== undefined) attrs.push(['xml:lang', lang]);
    const xml = decl + openTag(`${prefix}:stream`, attrs, quote, sep, order);
    const ascii = domainToASCII(domain.replace(/\.$/, ''));
    const expected = `${CANON.decl}<stream:stream xmlns='jabber:client' xmlns:stream='${NS_S}' to='${ascii}' version='1.0'` +
      `${lang !== undefined && LANGUAGE_TAG.test(lang) ? ` xml:lang='${lang}'` : ''}>`;
    return { xml, expected };
  });

const serverHeaderArb = fc.record({ decl: declArb, from: fc.option(attrValue), id: fc.option(attrValue), lang: fc.option(fc.constantFrom('en', 'fr')), quote: quoteArb, sep: spaceArb, order: orderArb, prefix: fc.constantFrom('stream', 'st') })
  .map(({ decl, from, id, lang, quote, sep, order, prefix }) => {
    const attrs: Array<[string, string]> = [['version', '1.0'], ['xmlns', 'jabber:client'], [`xmlns:${prefix}`, NS_S]];
    if (from !== null) attrs.push(['from', from]);
    if (id !== null) attrs.push(['id', id]);
    if (lang !== null) attrs.push(['xml:lang', lang]);
    const xml = decl + openTag(`${prefix}:stream`, attrs, quote, sep, order);
    const out = (name: string, value: string | null): string => (value === null ? '' : ` ${name}='${escapeXml(value)}'`);
    const expected = `${CANON.decl}<stream:stream xmlns='jabber:client' xmlns:stream='${NS_S}'${out('from', from)}${out('id', id)} version='1.0'${out('xml:lang', lang)}>`;
    return { xml, expected, prefix };
  });

const starttlsArb = fc.constantFrom(
  `<starttls xmlns='${NS_TLS}'/>`, `<starttls xmlns="${NS_TLS}"></starttls>`, `<tls:starttls xmlns:tls='${NS_TLS}'/>`, `<starttls\n xmlns='${NS_TLS}' />`,
);
const proceedArb = fc.constantFrom(`<proceed xmlns='${NS_TLS}'/>`, `<proceed xmlns="${NS_TLS}"></proceed>`, `<t:proceed xmlns:t='${NS_TLS}'/>`);

const featureChildArb = fc.constantFrom(
  `<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism><mechanism>${SERVER_MARK}</mechanism></mechanisms>`,
  "<compression xmlns='http://jabber.org/features/compress'><method>zlib</method></compression>",
  "<register xmlns='http://jabber.org/features/iq-register'/>",
  `<x xmlns='urn:example:x' a='${SERVER_MARK}'>${SERVER_MARK} &amp; 🧅</x>`,
  "<sm xmlns='urn:xmpp:sm:3'/>",
);

const featuresArb = (prefix: string): fc.Arbitrary<string> =>
  fc.record({
    children: fc.array(featureChildArb, { maxLength: 4 }),
    starttls: fc.constantFrom(`<starttls xmlns='${NS_TLS}'><required/></starttls>`, `<starttls xmlns='${NS_TLS}'/>`, `<tls:starttls xmlns:tls='${NS_TLS}'><tls:required/></tls:starttls>`),
    at: fc.nat(4),
    ws: wsArb,
  }).map(({ children, starttls, at, ws }) => {
    const all: string[] = [...children];
    all.splice(at % (all.length + 1), 0, starttls);
    return `<${prefix}:features>${all.join(ws)}</${prefix}:features>`;
  });

/** Well-framed TLS records: a ClientHello's record first, then any record type, bodies random. */
const tlsRecordsArb = fc.array(fc.record({ type: fc.constantFrom(20, 21, 22, 23), minor: fc.integer({ min: 1, max: 4 }), body: fc.uint8Array({ minLength: 1, maxLength: 300 }) }), { minLength: 1, maxLength: 4 })
  .map((records) => Buffer.concat(records.map(({ type, minor, body }, i) => {
    if (i === 0) return helloRecord('client', body.length >= 40 ? body : new Uint8Array(40).fill(body[0] ?? 0), minor);
    const header = Buffer.from([type, 3, minor, 0, 0]);
    header.writeUInt16BE(body.length, 3);
    return Buffer.concat([header, Buffer.from(body)]);
  })));

/** A negotiation that must relay, with the exact bytes each side must get. */
export const validTranscriptArb: fc.Arbitrary<ValidTranscript> = fc
  .record({
    client: clientHeaderArb,
    server: serverHeaderArb,
    featuresSeed: fc.nat(),
    starttls: starttlsArb,
    early: fc.boolean(),
    splitServer: fc.boolean(),
    afterStartTls: wsArb,
    tls: fc.option(tlsRecordsArb, { freq: 2 }),
    proceed: proceedArb,
    afterProceed: wsArb,
    serverWs: wsArb,
    clientWs: wsArb,
  })
  .chain((r) => featuresArb(r.server.prefix).map((features) => ({ ...r, features })))
  .map((r) => {
    const tls = r.tls ?? Buffer.alloc(0);
    const clientTail = Buffer.concat([Buffer.from(r.clientWs + r.starttls + r.afterStartTls), tls]);
    const steps: Step[] = [];
    steps.push({ from: 'client', data: r.early ? Buffer.concat([Buffer.from(r.client.xml), clientTail]) : Buffer.from(r.client.xml) });
    if (r.splitServer) {
      steps.push({ from: 'server', data: Buffer.from(r.server.xml) });
      steps.push({ from: 'server', data: Buffer.from(r.serverWs + r.features) });
    } else {
      steps.push({ from: 'server', data: Buffer.from(r.server.xml + r.serverWs + r.features) });
    }
    if (!r.early) steps.push({ from: 'client', data: clientTail });
    steps.push({ from: 'server', data: Buffer.from(r.proceed + r.afterProceed) });
    return {
      steps,
      expectToServer: Buffer.concat([Buffer.from(r.client.expected + CANON.starttls), tls]),
      expectToClient: r.server.expected + CANON.features + CANON.proceed,
      proceedStep: steps.length - 1,
    };
  });

/** Pieces an attacker (or a broken peer) might splice in anywhere. */
const CLIENT_FRAGMENTS = [
  `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${CLIENT_MARK}</auth>`,
  `<iq type='set'><query xmlns='jabber:iq:register'><password>${CLIENT_MARK}</password></query></iq>`,
  `<message to='x@y'><body>${CLIENT_MARK}</body></message>`,
  `<compress xmlns='http://jabber.org/protocol/compress'><method>zlib</method></compress>`,
  `<starttls xmlns='${NS_TLS}'/>`, `<starttls xmlns='${NS_TLS}'/>${CLIENT_MARK}`, '</stream:stream>', '<presence/>',
];
const SERVER_FRAGMENTS = [
  `<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>${SERVER_MARK}</mechanism></mechanisms></stream:features>`,
  `<proceed xmlns='${NS_TLS}'/>`, `<failure xmlns='${NS_TLS}'/>`, "<compressed xmlns='http://jabber.org/protocol/compress'/>",
  `<stream:error><host-unknown xmlns='${NS_ERR}'/><text xmlns='${NS_ERR}'>gone</text></stream:error>`,
  `<stream:error><see-other-host xmlns='${NS_ERR}'>evil.example:5222</see-other-host></stream:error>`,
  `<stream:error><conflict xmlns='${NS_ERR}'/><x xmlns='urn:x'>${SERVER_MARK}</x></stream:error>`,
  `<message><body>${SERVER_MARK}</body></message>`, '</stream:stream>',
];
const ANY_FRAGMENTS = [
  '<!-- c -->', '<?pi x?>', '<!DOCTYPE x [<!ENTITY a "aaaa">]>', '&a;', '\u0000', ']]>', '<![CDATA[x]]>', '\r', '🧅', ' ', '\n', 'text',
  '<a><b><c><d><e><f><g><h><i><j>', `<a ${Array.from({ length: 40 }, (_, i) => `a${i}='1'`).join(' ')}/>`, '<x:y/>', "<a xmlns:x='urn:x'/>",
];
const BINARY_FRAGMENTS = [
  Buffer.from([0xc3, 0x28]), Buffer.from([0xff]), Buffer.from([0xf0, 0x9f, 0xa7]), Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]),
  Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]), Buffer.from([0x17, 0x03, 0x03, 0x00, 0x03]), Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]),
];

const fragmentArb = (from: 'client' | 'server'): fc.Arbitrary<Buffer> =>
  fc.oneof(
    fc.constantFrom(...(from === 'client' ? CLIENT_FRAGMENTS : SERVER_FRAGMENTS)).map((s) => Buffer.from(s)),
    fc.constantFrom(...ANY_FRAGMENTS).map((s) => Buffer.from(s)),
    fc.constantFrom(...BINARY_FRAGMENTS),
    fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => Buffer.from(b)),
  );

type Mutation =
  | { kind: 'flip'; step: number; at: number; byte: number }
  | { kind: 'insert'; step: number; at: number; fragment: Buffer }
  | { kind: 'delete'; step: number; at: number; length: number }
  | { kind: 'duplicate'; step: number }
  | { kind: 'swap'; step: number; other: number }
  | { kind: 'event'; step: number; event: 'timeout' | 'client-eof' | 'server-eof' | 'upstream-failed' };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), step: fc.nat(), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), step: fc.nat(), at: fc.nat(), fragment: fc.oneof(fragmentArb('client'), fragmentArb('server')) }),
  fc.record({ kind: fc.constant('delete' as const), step: fc.nat(), at: fc.nat(), length: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), step: fc.nat() }),
  fc.record({ kind: fc.constant('swap' as const), step: fc.nat(), other: fc.nat() }),
  fc.record({ kind: fc.constant('event' as const), step: fc.nat(), event: fc.constantFrom('timeout' as const, 'client-eof' as const, 'server-eof' as const, 'upstream-failed' as const) }),
);

function mutate(steps: readonly Step[], m: Mutation): Step[] {
  const out = [...steps];
  const i = m.step % out.length;
  const target = out[i]!;
  const patch = (fn: (data: Buffer) => Buffer): void => {
    if ('data' in target) out[i] = { from: target.from, data: fn(target.data) };
  };
  switch (m.kind) {
    case 'flip':
      patch((d) => {
        if (d.length === 0) return d;
        const copy = Buffer.from(d);
        copy[m.at % copy.length] = m.byte;
        return copy;
      });
      break;
    case 'insert':
      patch((d) => {
        const at = m.at % (d.length + 1);
        return Buffer.concat([d.subarray(0, at), m.fragment, d.subarray(at)]);
      });
      break;
    case 'delete':
      patch((d) => {
        const at = m.at % (d.length + 1);
        return Buffer.concat([d.subarray(0, at), d.subarray(at + m.length)]);
      });
      break;
    case 'duplicate':
      out.splice(i, 0, target);
      break;
    case 'swap': {
      const j = m.other % out.length;
      out[i] = out[j]!;
      out[j] = target;
      break;
    }
    case 'event':
      out.splice(i, 0, { event: m.event });
      break;
  }
  return out;
}

/** A valid negotiation with one to four mutations: byte flips, spliced fragments, cuts, reordering, events. */
export const mutatedTranscriptArb: fc.Arbitrary<Step[]> = fc
  .tuple(validTranscriptArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }))
  .map(([valid, mutations]) => mutations.reduce<Step[]>((steps, m) => mutate(steps, m), [...valid.steps]));

/** A valid negotiation cut short at any byte, then ended by a timeout or an EOF. */
export const truncatedTranscriptArb = fc
  .tuple(validTranscriptArb, fc.nat(), fc.constantFrom('timeout' as const, 'client-eof' as const, 'server-eof' as const))
  .map(([valid, cut, end]) => {
    const total = valid.steps.reduce((n, s) => n + ('data' in s ? s.data.length : 0), 0);
    let left = cut % (total + 1);
    const steps: Step[] = [];
    let proceedComplete = false;
    for (const [i, s] of valid.steps.entries()) {
      if (!('data' in s)) continue;
      if (left >= s.data.length) {
        steps.push(s);
        left -= s.data.length;
        if (i === valid.proceedStep) proceedComplete = true;
        continue;
      }
      if (left > 0) steps.push({ from: s.from, data: s.data.subarray(0, left) });
      // The proceed step may end in whitespace: it is complete once its element is.
      if (i === valid.proceedStep && s.data.subarray(0, left).toString().includes('proceed') && /\/>|<\/[a-z:]*proceed>/.test(s.data.subarray(0, left).toString())) proceedComplete = true;
      break;
    }
    return { steps: [...steps, { event: end } as Step], proceedComplete, valid };
  });

/** Fragment soup: a valid client header (mostly), then random fragments from both sides. */
export const soupTranscriptArb: fc.Arbitrary<Step[]> = fc
  .tuple(
    fc.option(clientHeaderArb, { freq: 5 }),
    fc.option(serverHeaderArb, { freq: 3 }),
    fc.array(fc.oneof(
      fragmentArb('client').map((data) => ({ from: 'client' as const, data })),
      fragmentArb('server').map((data) => ({ from: 'server' as const, data })),
    ), { maxLength: 8 }),
  )
  .map(([client, server, rest]) => [
    ...(client ? [{ from: 'client' as const, data: Buffer.from(client.xml) }] : []),
    ...(server ? [{ from: 'server' as const, data: Buffer.from(server.xml) }] : []),
    ...rest,
  ]);

/** Chunk sizes, cycled over every step's bytes: mostly small, sometimes one byte, sometimes whole. */
export const chunkingArb = fc.array(fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 16 }), fc.integer({ min: 17, max: 4096 })), { minLength: 1, maxLength: 8 });

// ---- driver -----------------------------------------------------------------------------

export interface Run {
  readonly phase: Phase;
  readonly actions: readonly Action[];
  /** What the daemon sent the server before the relay (send actions), and the relay preamble. */
  readonly toServer: Buffer;
  readonly preamble?: Buffer;
  /** Every client byte fed before the relay started. */
  readonly clientFedAtRelay?: Buffer;
  readonly toClient: string;
  readonly problems: string[];
}

const DECISIONS = new Set(['refuse', 'close', 'start-relay']);

/**
 * Feeds `steps` through a Negotiator in chunks of `sizes` (cycled); upstream connects succeed at
 * once, or (with `lateConnect`) just before the next step. `final` is appended as an event.
 */
export function drive(steps: readonly Step[], sizes: readonly number[], options: { lateConnect?: boolean; final?: 'timeout' } = {}): Run {
  const negotiator = new Negotiator({ decideRoute: testRouting, streamId: 'fz', maxHeldBytes: 32 * 1024 });
  const actions: Action[] = [];
  const toServer: Buffer[] = [];
  const clientFed: Buffer[] = [];
  const problems: string[] = [];
  let toClient = '';
  let preamble: Buffer | undefined;
  let clientFedAtRelay: Buffer | undefined;
  let connects = 0;
  let connected = false;
  let pendingConnect = false;
  let decided = false;
  const apply = (batch: readonly Action[]): void => {
    for (const action of batch) {
      if (decided) problems.push(`an action after the decision: ${action.type}`);
      actions.push(action);
      if (DECISIONS.has(action.type)) decided = true;
      switch (action.type) {
        case 'connect':
          connects++;
          toServer.push(Buffer.from(action.first));
          if (options.lateConnect) pendingConnect = true;
          else {
            connected = true;
            apply(negotiator.event({ type: 'upstream-connected' }));
          }
          break;
        case 'send':
          if (action.to === 'server') {
            if (!connected) problems.push('sent to the server before it was connected');
            toServer.push(Buffer.from(action.data));
          } else toClient += action.data;
          break;
        case 'start-relay':
          preamble = action.clientPreamble;
          clientFedAtRelay = Buffer.concat(clientFed);
          break;
        case 'refuse':
          toClient += action.toClient;
          break;
        case 'close':
          toClient += action.toClient ?? '';
          break;
      }
    }
  };
  let size = 0;
  for (const step of steps) {
    if (pendingConnect) {
      pendingConnect = false;
      connected = true;
      apply(negotiator.event({ type: 'upstream-connected' }));
    }
    if ('event' in step) {
      if (step.event === 'timeout') apply(negotiator.event({ type: 'timeout', stage: 'negotiation', seconds: 1 }));
      else if (step.event === 'upstream-failed') apply(negotiator.event({ type: 'upstream-failed', refusal: refusal('socks-general-failure', { place: 'onion', words: 'Tor could not make the connection' }) }));
      else apply(negotiator.event({ type: 'eof', from: step.event === 'client-eof' ? 'client' : 'server' }));
      continue;
    }
    // The server only speaks once connected (the daemon reads nothing from a server it has not reached).
    if (step.from === 'server' && !connected) continue;
    for (let at = 0; at < step.data.length;) {
      const n = Math.max(1, sizes[size++ % sizes.length]!);
      const chunk = step.data.subarray(at, at + n);
      at += n;
      if (step.from === 'client') clientFed.push(chunk);
      apply(step.from === 'client' ? negotiator.fromClient(chunk) : negotiator.fromServer(chunk));
    }
  }
  if (options.final) apply(negotiator.event({ type: 'timeout', stage: 'negotiation', seconds: 1 }));
  if (connects > 1) problems.push(`${connects} connects`);
  return {
    phase: negotiator.state.phase,
    actions,
    toServer: Buffer.concat(toServer),
    ...(preamble ? { preamble } : {}),
    ...(clientFedAtRelay ? { clientFedAtRelay } : {}),
    toClient,
    problems,
  };
}

// ---- invariants -------------------------------------------------------------------------

const re = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const ESCAPED = "(?:[^'<&]|&(?:amp|lt|gt|quot|apos);)*";
const TEXT = '(?:[^<&]|&(?:amp|lt|gt|quot|apos);)*';
const CONDITION = '[a-z-]+';
const HEADER_OUT = `${re(CANON.decl)}<stream:stream xmlns='jabber:client' xmlns:stream='${re(NS_S)}'(?: from='${ESCAPED}')?(?: id='${ESCAPED}')?(?: version='${ESCAPED}')?(?: xml:lang='${ESCAPED}')?>`;
const OUR_ERROR = `<stream:error><${CONDITION} xmlns='${re(NS_ERR)}'/><text xmlns='${re(NS_ERR)}' xml:lang='en'>${TEXT}</text></stream:error></stream:stream>`;
const SERVER_ERROR = `<stream:error><${CONDITION} xmlns='${re(NS_ERR)}'/>(?:<text xmlns='${re(NS_ERR)}'(?: xml:lang='[A-Za-z0-9-]+')?>${TEXT}</text>)?</stream:error></stream:stream>`;
const TO_CLIENT = new RegExp(`^(?:${HEADER_OUT}(?:${re(CANON.features)}(?:${re(CANON.proceed)})?)?)?(?:${OUR_ERROR}|${SERVER_ERROR}|</stream:stream>)?$`);
const UPSTREAM = `${re(CANON.decl)}<stream:stream xmlns='jabber:client' xmlns:stream='${re(NS_S)}' to='[a-z0-9-]{1,63}(?:\\.[a-z0-9-]{1,63})*' version='1\\.0'(?: xml:lang='[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8}){0,7}')?>`;
const TO_SERVER = new RegExp(`^(?:${UPSTREAM}(?:${re(CANON.starttls)})?)?$`);
const TEXT_CONTENT = /<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'(?: xml:lang='[^']*')?>[^<]*<\/text>/g;

/** Every invariant a run must keep; returns what it broke (empty when none). */
export function violations(run: Run, options: { decided?: boolean } = {}): string[] {
  const out = [...run.problems];
  const decisions = run.actions.filter((a) => DECISIONS.has(a.type)).length;
  if (decisions > 1) out.push(`${decisions} decisions`);
  if (options.decided && decisions !== 1) out.push(`${decisions} decisions after the final timeout`);
  const terminal = run.phase === 'Relaying' || run.phase === 'Refused' || run.phase === 'Closed';
  if (terminal !== (decisions === 1)) out.push(`phase ${run.phase} with ${decisions} decisions`);
  if (!TO_SERVER.test(run.toServer.toString('latin1'))) out.push(`to the server: ${JSON.stringify(run.toServer.toString('latin1').slice(0, 300))}`);
  if (run.toServer.includes(CLIENT_MARK)) out.push('a client marker reached the server');
  if (!TO_CLIENT.test(run.toClient)) out.push(`to the client: ${JSON.stringify(run.toClient.slice(0, 400))}`);
  if (run.toClient.replace(TEXT_CONTENT, '').includes(SERVER_MARK)) out.push('a server marker reached the client');
  const proceeds = run.toClient.split(CANON.proceed).length - 1;
  if ((run.phase === 'Relaying') !== (proceeds === 1)) out.push(`phase ${run.phase} with ${proceeds} <proceed/> to the client`);
  if (run.phase === 'Relaying' && !run.toClient.endsWith(CANON.proceed)) out.push('something after <proceed/>');
  if (run.phase === 'Relaying' && !run.toServer.toString('latin1').endsWith(CANON.starttls)) out.push('relaying without <starttls/> sent');
  if (run.preamble !== undefined) {
    if (run.preamble.length > 0 && !wellFramedTls(run.preamble)) out.push('the preamble is not well-framed TLS');
    const fed = run.clientFedAtRelay ?? Buffer.alloc(0);
    if (!fed.subarray(fed.length - run.preamble.length).equals(run.preamble)) out.push('the preamble is not the client\'s last bytes');
    const before = fed.subarray(0, fed.length - run.preamble.length).toString('latin1');
    if (!/(?:\/>|<\/[A-Za-z_:.-]*starttls[ \t\r\n]*>)[ \t\r\n]*$/.test(before)) out.push('the preamble does not start right after <starttls/>');
  }
  return out;
}

/**
 * Record headers only (RFC 8446 §5.1): the first a handshake, every type 20–23, version 3.x.
 * The last record may be cut short (the relay goes on checking where the preamble stopped).
 */
export function wellFramedTls(bytes: Buffer): boolean {
  let offset = 0;
  let first = true;
  while (offset < bytes.length) {
    const type = bytes[offset]!;
    if ((first && type !== 22) || type < 20 || type > 23) return false;
    if (bytes.length - offset >= 2 && bytes[offset + 1] !== 3) return false;
    if (bytes.length - offset < 5) return true;
    offset += 5 + bytes.readUInt16BE(offset + 3);
    first = false;
  }
  return true;
}

/** How many cases each fuzz file runs: FUZZ_RUNS overrides (e.g. for a long local soak). */
export function runs(fallback: number): number {
  const n = Number(process.env.FUZZ_RUNS);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}
