import { isUtf8 } from 'node:buffer';
import { SaxesParser, type SaxesTagNS } from 'saxes';
import { NS, type XmlElement } from './xml-element.js';

export type XmlViolationKind = 'not-well-formed' | 'restricted-xml' | 'bad-format' | 'limit';

export interface XmlViolation {
  readonly kind: XmlViolationKind;
  readonly detail: string;
}

export type XmlEvent =
  | { readonly kind: 'header'; readonly header: XmlElement }
  /** `trailing` is set on the element after which reading stopped: the bytes that followed it. */
  | { readonly kind: 'element'; readonly element: XmlElement; readonly trailing?: Buffer }
  | { readonly kind: 'end' }
  | { readonly kind: 'violation'; readonly violation: XmlViolation };

export interface XmlLimits {
  /** Bytes accepted in total, across all chunks (the pre-TLS budget). */
  readonly maxBytes: number;
  readonly maxDepth: number;
  readonly maxAttributes: number;
  /** Elements accepted in total after the stream header: what a reader may hold is bounded by it. */
  readonly maxElements: number;
}

export const DEFAULT_XML_LIMITS: XmlLimits = { maxBytes: 64 * 1024, maxDepth: 8, maxAttributes: 32, maxElements: 128 };

/** Bytes decoded and parsed at a time. */
const PIECE_BYTES = 4096;
/**
 * Characters between two tags (text, or one tag's name and attributes): the parser holds a run
 * whole until it ends, so a run is bounded on its own, well above anything a negotiation sends.
 */
const MAX_RUN = 4096;

/** Characters of text kept per reader (a stream error's words); the rest is read and dropped. */
const MAX_KEPT_TEXT = 1024;

/** What a reader is told by whoever decides on its elements. */
export interface XmlReading {
  /** Reading stops right after this top-level element: the stream switches to TLS there. */
  readonly stopAfter: (element: XmlElement) => boolean;
  /**
   * Called at every start tag inside a top-level element (`depth` 1 for the element itself, 2
   * for its children) with the element as read so far: true when it can be decided on now, so
   * it is handed over at once, unfinished, and reading stops.
   */
  readonly decideAtStart?: (top: XmlElement, depth: number) => boolean;
  /** Which elements inside a top-level element are kept (all, when absent), by their kept parent, namespace, name and depth. */
  readonly keep?: (parent: XmlElement, uri: string, local: string, depth: number) => boolean;
}

/**
 * One direction of an XMPP stream before TLS, as header / element / end / violation events.
 * Wraps saxes (strict, namespace-aware, never expands DTD entities) and adds what saxes lacks:
 * byte, depth and attribute caps, UTF-8 validation, and the byte offset right after the element
 * where the stream switches to TLS (RFC 6120 §5.4.3.3), so no byte after it is read as XML.
 */
export class XmlEventReader {
  /** Let go once reading has ended, with the text it still holds. */
  #parser: SaxesParser | undefined = new SaxesParser({ xmlns: true, position: true });
  readonly #limits: XmlLimits;
  readonly #reading: XmlReading;
  readonly #stack: XmlElement[] = [];
  #bytes = 0;
  #elements = 0;
  #textLeft = MAX_KEPT_TEXT;
  #pending: Buffer = Buffer.alloc(0);
  #events: XmlEvent[] = [];
  #done = false;
  #stopAtChar = -1;
  /** Where reading ended (a decision, a violation, the stop), as a character position. */
  #endedAtChar = -1;
  /** saxes' `position` is a string index that is only current inside its callbacks: count what was written. */
  #charsBefore = 0;
  /** Where the last tag ended: the start of the run the parser is holding. */
  #runFrom = 0;
  /** Where the last top-level element (or the stream) was closed, and the index of its event in this write. */
  #closedAt = -1;
  #closedEvent = -1;

  constructor(reading: XmlReading, limits: XmlLimits = DEFAULT_XML_LIMITS) {
    this.#reading = reading;
    this.#limits = limits;
    const parser = this.#parser!;
    parser.on('error', (error) => this.#error(describeSaxesError(error.message)));
    parser.on('doctype', () => this.#violate('restricted-xml', 'a DOCTYPE is not allowed in XMPP (RFC 6120 §11.1)'));
    parser.on('comment', () => this.#violate('restricted-xml', 'XML comments are not allowed in XMPP (RFC 6120 §11.1)'));
    parser.on('processinginstruction', () =>
      this.#violate('restricted-xml', 'processing instructions are not allowed in XMPP (RFC 6120 §11.1)'));
    parser.on('opentag', (tag) => this.#open(tag as SaxesTagNS));
    parser.on('text', (text) => this.#text(text));
    parser.on('cdata', (text) => this.#text(text));
    parser.on('closetag', () => this.#close());
  }

  /** True once reading has ended: after a violation, the end of the stream, or the TLS switch. */
  get done(): boolean {
    return this.#done;
  }

  feed(chunk: Buffer): XmlEvent[] {
    if (this.#done) return [];
    this.#bytes += chunk.length;
    if (this.#bytes > this.#limits.maxBytes) {
      this.#done = true;
      return [violation('limit', `more than ${this.#limits.maxBytes} bytes`)];
    }
    const data = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    const complete = completeUtf8Length(data);
    this.#pending = Buffer.from(data.subarray(complete));
    this.#events = [];
    let checked = complete;
    // Decoded and parsed piece by piece: no string the parser or an element keeps can pin more than one piece.
    for (let offset = 0; offset < complete && !this.#done;) {
      const end = complete - offset <= PIECE_BYTES ? complete : offset + completeUtf8Length(data.subarray(offset, offset + PIECE_BYTES));
      const text = data.toString('utf8', offset, end);
      this.#closedEvent = -1;
      this.#parser!.write(text);
      if (!this.#done && this.#charsBefore + text.length - this.#runFrom > MAX_RUN) {
        this.#violate('limit', `more than ${MAX_RUN} characters without a tag ending`);
      }
      if (this.#done) {
        // What came after the point where reading ended is never read: not even its encoding counts.
        checked = offset + Buffer.byteLength(text.slice(0, Math.max(0, this.#endedAtChar - this.#charsBefore)));
        break;
      }
      this.#charsBefore += text.length;
      offset = end;
    }
    const events = this.#events;
    this.#events = [];
    if (this.#stopAtChar >= 0) {
      const last = events.pop();
      if (last?.kind !== 'element') throw new Error('XmlEventReader: stop without an element');
      events.push({ kind: 'element', element: last.element, trailing: Buffer.from(data.subarray(checked)) });
      this.#pending = Buffer.alloc(0);
    }
    if (this.#done) this.#letGo();
    if (!isUtf8(data.subarray(0, checked))) {
      this.#done = true;
      this.#letGo();
      return [violation('not-well-formed', 'the bytes are not valid UTF-8')];
    }
    return events;
  }

  #letGo(): void {
    this.#parser = undefined;
    this.#stack.length = 0;
  }

  /**
   * saxes reports a mismatched end tag (`<starttls></Xtarttls>`) only after it emitted the close:
   * an error at the very position of a close takes that element (and any stop after it) back.
   */
  #error(detail: string): void {
    if (this.#closedEvent >= 0 && this.#parser?.position === this.#closedAt) {
      this.#events.splice(this.#closedEvent);
      this.#closedEvent = -1;
      this.#stopAtChar = -1;
      this.#done = false;
    }
    this.#violate('not-well-formed', detail);
  }

  #violate(kind: XmlViolationKind, detail: string): void {
    if (this.#done) return;
    this.#end();
    this.#events.push(violation(kind, detail));
  }

  #end(): void {
    this.#done = true;
    this.#endedAtChar = this.#parser?.position ?? -1;
  }

  #open(tag: SaxesTagNS): void {
    if (this.#done) return;
    this.#runFrom = this.#parser!.position;
    const depth = this.#stack.length;
    if (depth >= this.#limits.maxDepth) {
      this.#violate('limit', `elements are nested more than ${this.#limits.maxDepth} deep`);
      return;
    }
    if (depth > 0 && ++this.#elements > this.#limits.maxElements) {
      this.#violate('limit', `more than ${this.#limits.maxElements} elements`);
      return;
    }
    const attrs: Record<string, string> = {};
    let count = 0;
    for (const attribute of Object.values(tag.attributes)) {
      if (++count > this.#limits.maxAttributes) {
        this.#violate('limit', `an element has more than ${this.#limits.maxAttributes} attributes`);
        return;
      }
      if (attribute.prefix === 'xmlns' || attribute.name === 'xmlns') continue;
      // The header's attributes choose the route; below it, only a language is ever used.
      if (depth === 0) attrs[attribute.name] = attribute.value;
      else if (attribute.name === 'xml:lang' && attribute.value.length <= MAX_KEPT_NAME) attrs['xml:lang'] = own(attribute.value);
    }
    const parent = this.#stack[depth - 1];
    // Below the top level, only what the decision reads is kept (every element is counted all the same).
    const keep = depth < 2 || (parent !== undefined && parent !== IGNORED && (this.#reading.keep?.(parent, tag.uri, tag.local, depth) ?? true));
    if (!keep) {
      this.#stack.push(IGNORED);
    } else {
      const defaultNs = tag.ns?.[''];
      const element: XmlElement = {
        uri: NAMESPACES.get(tag.uri) ?? own(tag.uri),
        local: own(tag.local),
        attrs,
        children: [],
        text: '',
        ...(defaultNs !== undefined ? { defaultNs: NAMESPACES.get(defaultNs) ?? own(defaultNs) } : {}),
      };
      if (depth === 0) this.#events.push({ kind: 'header', header: element });
      else parent?.children.push(element);
      this.#stack.push(element);
    }
    const top = this.#stack[1];
    if (top && this.#reading.decideAtStart?.(top, depth)) {
      this.#events.push({ kind: 'element', element: top });
      this.#end();
    }
  }

  #text(text: string): void {
    if (this.#done) return;
    const depth = this.#stack.length;
    if (depth === 1) {
      if (!/^[ \t\r\n]*$/.test(text)) this.#violate('bad-format', 'text outside of any element');
      return;
    }
    const current = this.#stack[depth - 1];
    if (!current || current === IGNORED || this.#textLeft === 0) return;
    const kept = text.length <= this.#textLeft ? text : text.slice(0, this.#textLeft);
    this.#textLeft -= kept.length;
    current.text += kept;
  }

  #close(): void {
    if (this.#done) return;
    this.#runFrom = this.#parser!.position;
    const element = this.#stack.pop();
    if (!element) return;
    const depth = this.#stack.length;
    this.#closedEvent = depth <= 1 ? this.#events.length : -1;
    this.#closedAt = this.#parser!.position;
    if (depth === 0) {
      this.#events.push({ kind: 'end' });
      this.#end();
    } else if (depth === 1) {
      this.#events.push({ kind: 'element', element });
      if (this.#reading.stopAfter(element)) {
        this.#stopAtChar = this.#parser!.position;
        this.#end();
      }
    }
  }
}

/** Namespaces the negotiation reads, each kept as one shared string. */
const NAMESPACES: ReadonlyMap<string, string> = new Map(Object.values(NS).map((ns) => [ns, ns]));

/** Stands in for an element that is read and counted but not kept. */
const IGNORED: XmlElement = Object.freeze({ uri: '', local: '', attrs: Object.freeze({}), children: Object.freeze([]) as unknown as XmlElement[], text: '' });

/** Names and namespaces longer than this are no name the negotiation knows: kept cut short. */
const MAX_KEPT_NAME = 80;

/**
 * A name or namespace as a string of its own, at most MAX_KEPT_NAME characters: a substring
 * of the parser's input would keep that whole input alive.
 */
function own(value: string): string {
  const kept = value.length <= MAX_KEPT_NAME ? value : `${value.slice(0, MAX_KEPT_NAME)}…`;
  return kept.length < 13 ? kept : Buffer.from(kept, 'utf8').toString('utf8');
}

function violation(kind: XmlViolationKind, detail: string): XmlEvent {
  return { kind: 'violation', violation: { kind, detail } };
}

/** saxes messages start with "line:column: "; quoted names may be peer data, so they are dropped. */
function describeSaxesError(message: string): string {
  return message.replace(/^\d+:\d+: /, '').replace(/"[^"]*"/g, '…').replace(/\.$/, '');
}

/** Length of the longest prefix that does not end inside a multi-byte UTF-8 sequence. */
export function completeUtf8Length(data: Buffer): number {
  const end = data.length;
  for (let back = 1; back <= 3 && back <= end; back++) {
    const byte = data[end - back] as number;
    if ((byte & 0xc0) === 0x80) continue;
    const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return needed > back ? end - back : end;
  }
  return end;
}
