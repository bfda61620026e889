import { isUtf8 } from 'node:buffer';
import { SaxesParser, type SaxesTagNS } from 'saxes';
import type { XmlElement } from './xml-element.js';

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
}

export const DEFAULT_XML_LIMITS: XmlLimits = { maxBytes: 64 * 1024, maxDepth: 8, maxAttributes: 32 };

/**
 * One direction of an XMPP stream before TLS, as header / element / end / violation events.
 * Wraps saxes (strict, namespace-aware, never expands DTD entities) and adds what saxes lacks:
 * byte, depth and attribute caps, UTF-8 validation, and the byte offset right after the element
 * where the stream switches to TLS (RFC 6120 §5.4.3.3), so no byte after it is read as XML.
 */
export class XmlEventReader {
  readonly #parser = new SaxesParser({ xmlns: true, position: true });
  readonly #limits: XmlLimits;
  readonly #stopAfter: (element: XmlElement) => boolean;
  readonly #stack: XmlElement[] = [];
  #bytes = 0;
  #pending: Buffer = Buffer.alloc(0);
  #events: XmlEvent[] = [];
  #done = false;
  #stopAtChar = -1;
  /** saxes' `position` is a string index that is only current inside its callbacks: count what was written. */
  #charsBefore = 0;
  /** Where the last top-level element (or the stream) was closed, and the index of its event in this write. */
  #closedAt = -1;
  #closedEvent = -1;

  constructor(stopAfter: (element: XmlElement) => boolean, limits: XmlLimits = DEFAULT_XML_LIMITS) {
    this.#stopAfter = stopAfter;
    this.#limits = limits;
    const parser = this.#parser;
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
    const text = data.toString('utf8', 0, complete);
    this.#pending = Buffer.from(data.subarray(complete));
    this.#events = [];
    this.#closedEvent = -1;
    this.#parser.write(text);
    const events = this.#events;
    this.#events = [];
    let checked = data.subarray(0, complete);
    if (this.#stopAtChar >= 0) {
      const stopByte = Buffer.byteLength(text.slice(0, this.#stopAtChar - this.#charsBefore));
      checked = data.subarray(0, stopByte);
      const last = events.pop();
      if (last?.kind !== 'element') throw new Error('XmlEventReader: stop without an element');
      events.push({ kind: 'element', element: last.element, trailing: Buffer.from(data.subarray(stopByte)) });
      this.#pending = Buffer.alloc(0);
    }
    this.#charsBefore += text.length;
    if (!isUtf8(checked)) {
      this.#done = true;
      return [violation('not-well-formed', 'the bytes are not valid UTF-8')];
    }
    return events;
  }

  /**
   * saxes reports a mismatched end tag (`<starttls></Xtarttls>`) only after it emitted the close:
   * an error at the very position of a close takes that element (and any stop after it) back.
   */
  #error(detail: string): void {
    if (this.#closedEvent >= 0 && this.#parser.position === this.#closedAt) {
      this.#events.splice(this.#closedEvent);
      this.#closedEvent = -1;
      this.#stopAtChar = -1;
      this.#done = false;
    }
    this.#violate('not-well-formed', detail);
  }

  #violate(kind: XmlViolationKind, detail: string): void {
    if (this.#done) return;
    this.#done = true;
    this.#events.push(violation(kind, detail));
  }

  #open(tag: SaxesTagNS): void {
    if (this.#done) return;
    const depth = this.#stack.length;
    if (depth >= this.#limits.maxDepth) {
      this.#violate('limit', `elements are nested more than ${this.#limits.maxDepth} deep`);
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
      attrs[attribute.name] = attribute.value;
    }
    const defaultNs = tag.ns?.[''];
    const element: XmlElement = { uri: tag.uri, local: tag.local, attrs, children: [], text: '', ...(defaultNs !== undefined ? { defaultNs } : {}) };
    if (depth === 0) {
      this.#events.push({ kind: 'header', header: element });
    } else {
      this.#stack[depth - 1]?.children.push(element);
    }
    this.#stack.push(element);
  }

  #text(text: string): void {
    if (this.#done) return;
    const depth = this.#stack.length;
    if (depth === 1) {
      if (!/^[ \t\r\n]*$/.test(text)) this.#violate('bad-format', 'text outside of any element');
      return;
    }
    const current = this.#stack[depth - 1];
    if (current) current.text += text;
  }

  #close(): void {
    if (this.#done) return;
    const element = this.#stack.pop();
    if (!element) return;
    const depth = this.#stack.length;
    this.#closedEvent = depth <= 1 ? this.#events.length : -1;
    this.#closedAt = this.#parser.position;
    if (depth === 0) {
      this.#events.push({ kind: 'end' });
      this.#done = true;
    } else if (depth === 1) {
      this.#events.push({ kind: 'element', element });
      if (this.#stopAfter(element)) {
        this.#stopAtChar = this.#parser.position;
        this.#done = true;
      }
    }
  }
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
