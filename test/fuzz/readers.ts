// Properties of the two byte readers under the policy, under random chunkings:
// - XmlEventReader finds the exact byte where TLS starts (right after <starttls/>), whatever came
//   before it (astral characters, entities, CRLF, split UTF-8) and whatever follows (any bytes):
//   the `trailing` bytes plus every later chunk are exactly the bytes after the element.
// - Its events do not depend on the chunking; after a violation, the stream's end or the stop,
//   nothing more; never an event from beyond the byte budget; never an exception.
// - TlsRecordWalker accepts well-framed records under any chunking and refuses a broken header.
import fc from 'fast-check';
import t from 'tap';
import { helloRecord } from '../helpers/tls-hello.js';
import { TlsRecordWalker } from '../../src/policy/tls-records.js';
import { is, NS } from '../../src/policy/xml-element.js';
import { XmlEventReader, type XmlEvent } from '../../src/policy/xml-events.js';
import { runs } from '../helpers/adversary-fuzz.js';

const NS_S = 'http://etherx.jabber.org/streams';
const stopAtStartTls = (element: Parameters<typeof is>[0]): boolean => is(element, NS.tls, 'starttls');

const textArb = fc.array(fc.constantFrom('a', ' ', '&amp;', '&lt;', '&#x1F9C5;', '&#10;', 'é', '中', '🧅', '𝄞', '\r\n', '\r', '\n', '\t', '>'), { maxLength: 10 }).map((a) => a.join(''));
const attrArb = fc.array(fc.constantFrom('a', ' ', '&amp;', '&quot;', '🧅', 'ß', '\r\n', '>'), { maxLength: 8 }).map((a) => a.join(''));
const elementArb = fc.tuple(fc.constantFrom('x', 'y', 'p:q'), attrArb, textArb).map(([name, attr, text]) =>
  name === 'p:q' ? `<p:q xmlns:p='urn:p' a="${attr}">${text}</p:q>` : `<${name} a="${attr}">${text}</${name}>`);
const wsArb = fc.constantFrom('', ' ', '\r\n', '\n\t', '\r');
const startTlsArb = fc.constantFrom(
  `<starttls xmlns='${NS.tls}'/>`, `<starttls xmlns="${NS.tls}"></starttls>`, `<t:starttls xmlns:t='${NS.tls}' x='🧅'/>`, `<starttls xmlns='${NS.tls}'>\r\n</starttls>`,
);
const docArb = fc.record({
  lang: attrArb,
  before: fc.array(fc.tuple(wsArb, elementArb).map(([w, e]) => w + e), { maxLength: 4 }),
  ws: wsArb,
  starttls: startTlsArb,
  tail: fc.uint8Array({ maxLength: 64 }),
}).map(({ lang, before, ws, starttls, tail }) => ({
  head: Buffer.from(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_S}' to='example.test' xml:lang="${lang}" version='1.0'>${before.join('')}${ws}${starttls}`),
  tail: Buffer.from(tail),
  elements: before.length,
}));
const sizesArb = fc.array(fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 8, max: 512 })), { minLength: 1, maxLength: 6 });

function chunks(data: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    out.push(data.subarray(at, at + n));
    at += n;
  }
  return out;
}

function summary(events: readonly XmlEvent[]): string {
  return JSON.stringify(events.map((e) => (e.kind === 'element' ? { el: e.element.local, uri: e.element.uri, attrs: e.element.attrs, text: e.element.text } : e.kind === 'header' ? { header: e.header.attrs } : e.kind)));
}

t.test('XmlEventReader: the TLS switch point is exact under any chunking', async (t) => {
  const numRuns = runs(12_000);
  const started = Date.now();
  fc.assert(
    fc.property(docArb, sizesArb, ({ head, tail, elements }, sizes) => {
      const data = Buffer.concat([head, tail]);
      const reader = new XmlEventReader({ stopAfter: stopAtStartTls });
      const events: XmlEvent[] = [];
      let after: Buffer[] = [];
      for (const chunk of chunks(data, sizes)) {
        if (reader.done) {
          after.push(chunk);
          continue;
        }
        const got = reader.feed(chunk);
        events.push(...got);
        const last = got.at(-1);
        if (last?.kind === 'element' && last.trailing) after = [last.trailing];
      }
      if (events.some((e) => e.kind === 'violation')) throw new Error(`violation: ${summary(events)}`);
      if (events.length !== elements + 2 || events[0]?.kind !== 'header') throw new Error(`events: ${summary(events)}`);
      const stop = events.at(-1);
      if (stop?.kind !== 'element' || !is(stop.element, NS.tls, 'starttls')) throw new Error('no stop at <starttls/>');
      const rest = Buffer.concat(after);
      if (!rest.equals(tail)) throw new Error(`after the switch: ${rest.toString('hex')} instead of ${tail.toString('hex')}`);
      const whole = new XmlEventReader({ stopAfter: stopAtStartTls }).feed(data);
      if (summary(whole) !== summary(events)) throw new Error(`differs from a whole read: ${summary(whole)} vs ${summary(events)}`);
    }),
    { numRuns },
  );
  t.pass(`${numRuns} cases in ${Date.now() - started} ms`);
});

const junkArb = fc.oneof(
  fc.uint8Array({ maxLength: 6 }).map((b) => Buffer.from(b)),
  fc.constantFrom('<', '>', '/>', '</x>', '<!--', '-->', '<?p?>', '<!DOCTYPE a>', '&', '&x;', '\u0000', ']]>', '<![CDATA[', "'", '"', '=', '</stream:stream>', '<a>'.repeat(9))
    .map((s) => Buffer.from(s)),
);

t.test('XmlEventReader: mutated input never throws, stops for good, and respects the byte budget', async (t) => {
  const numRuns = runs(12_000);
  const started = Date.now();
  fc.assert(
    fc.property(docArb, fc.array(fc.tuple(fc.nat(), junkArb), { minLength: 1, maxLength: 4 }), sizesArb, fc.integer({ min: 64, max: 400 }), ({ head, tail }, junk, sizes, maxBytes) => {
      let data = Buffer.concat([head, tail]);
      for (const [at, piece] of junk) {
        const i = at % (data.length + 1);
        data = Buffer.concat([data.subarray(0, i), piece, data.subarray(i)]);
      }
      const reader = new XmlEventReader({ stopAfter: stopAtStartTls }, { maxBytes, maxDepth: 8, maxAttributes: 32, maxElements: 128 });
      let fed = 0;
      let over = false;
      for (const chunk of chunks(data, sizes)) {
        const wasDone = reader.done;
        fed += chunk.length;
        const got = reader.feed(chunk);
        if (wasDone && got.length > 0) throw new Error('events after the reader was done');
        const stops = got.filter((e) => e.kind === 'violation' || e.kind === 'end' || (e.kind === 'element' && e.trailing));
        if (stops.length > 1 || (stops.length === 1 && got.at(-1) !== stops[0])) throw new Error(`events after a stop: ${summary(got)}`);
        if (stops.length === 1 && !reader.done) throw new Error('a stop without done');
        if (over && got.length > 0) throw new Error('events beyond the byte budget');
        if (fed > maxBytes) {
          if (got.length > 0 && !(got.length === 1 && got[0]?.kind === 'violation')) throw new Error(`events from beyond the budget: ${summary(got)}`);
          over = true;
        }
      }
    }),
    { numRuns },
  );
  t.pass(`${numRuns} cases in ${Date.now() - started} ms`);
});

const recordsArb = fc.array(fc.record({ type: fc.constantFrom(20, 21, 22, 23), minor: fc.integer({ min: 0, max: 4 }), length: fc.integer({ min: 1, max: 600 }) }), { minLength: 1, maxLength: 6 })
  .map((records) => Buffer.concat(records.map(({ type, minor, length }, i) => {
    if (i === 0) return helloRecord('client', length, minor);
    const record = Buffer.alloc(5 + length, 0x5a);
    record[0] = i === 0 ? 22 : type;
    record[1] = 3;
    record[2] = minor;
    record.writeUInt16BE(length, 3);
    return record;
  })));

t.test('TlsRecordWalker: chunking never changes the verdict', async (t) => {
  const numRuns = runs(12_000);
  const started = Date.now();
  fc.assert(
    fc.property(recordsArb, sizesArb, fc.option(fc.tuple(fc.nat(), fc.constantFrom(0, 1), fc.integer({ min: 0, max: 255 }))), (stream, sizes, corruption) => {
      let data = stream;
      let broken = false;
      if (corruption) {
        // Corrupt the type or version byte of one record header.
        const starts: number[] = [];
        for (let at = 0; at < stream.length; at += 5 + stream.readUInt16BE(at + 3)) starts.push(at);
        const start = starts[corruption[0] % starts.length]!;
        const value = corruption[2];
        const bad = corruption[1] === 0 ? (value < 20 || value > 23 || (start === 0 && value !== 22)) : value !== 3;
        if (bad) {
          data = Buffer.from(stream);
          data[start + corruption[1]] = value;
          broken = true;
        }
      }
      const walker = new TlsRecordWalker('client');
      const problem = chunks(data, sizes).map((c) => walker.check(c)).find((p) => p !== undefined);
      if (broken !== (problem !== undefined)) throw new Error(`broken=${broken} but problem=${problem}`);
      if (!broken && !walker.atBoundary) throw new Error('whole records, yet not at a boundary');
    }),
    { numRuns },
  );
  t.pass(`${numRuns} cases in ${Date.now() - started} ms`);
});
