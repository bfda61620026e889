import { NS, type XmlElement } from './xml-element.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

export function escapeXml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

function attributes(attrs: Readonly<Record<string, string>>, keep: readonly string[]): string {
  let out = '';
  for (const name of keep) {
    const value = attrs[name];
    if (value !== undefined) out += ` ${name}='${escapeXml(value)}'`;
  }
  return out;
}

export const XML_DECLARATION = "<?xml version='1.0'?>";

/** A stream header written by us from parsed attributes: only the named ones survive. */
export function streamHeader(attrs: Readonly<Record<string, string>>, keep: readonly string[]): string {
  return `<stream:stream xmlns='${NS.client}' xmlns:stream='${NS.streams}'${attributes(attrs, keep)}>`;
}

export const STARTTLS = `<starttls xmlns='${NS.tls}'/>`;
export const PROCEED = `<proceed xmlns='${NS.tls}'/>`;
/** The only features a client sees before TLS: STARTTLS, required (RFC 6120 §5.3.1). */
export const FEATURES_STARTTLS_REQUIRED = `<stream:features><starttls xmlns='${NS.tls}'><required/></starttls></stream:features>`;
export const STREAM_CLOSE = '</stream:stream>';
/** How much of a server's error text is passed on. */
export const MAX_ERROR_TEXT = 1024;

/** A stream error written by us: a condition and, optionally, words (RFC 6120 §4.9.2). */
export function streamErrorElement(condition: string, words?: { readonly text: string; readonly lang?: string }): string {
  const text = words
    ? `<text xmlns='${NS.streamErrors}'${words.lang ? ` xml:lang='${escapeXml(words.lang)}'` : ''}>` +
      `${escapeXml(Array.from(words.text).slice(0, MAX_ERROR_TEXT).join(''))}</text>`
    : '';
  return `<stream:error><${condition} xmlns='${NS.streamErrors}'/>${text}</stream:error>`;
}

/**
 * Re-serialises a parsed element with canonical namespaces: the streams namespace as `stream:`,
 * every other namespace as a default `xmlns` where it changes. Only unprefixed attributes and
 * xml:lang are kept, so nothing the parser did not understand is passed on.
 */
export function serializeElement(element: XmlElement, parentNs: string = NS.client): string {
  const name = element.uri === NS.streams ? `stream:${element.local}` : element.local;
  const ns = element.uri === NS.streams || element.uri === parentNs ? '' : ` xmlns='${escapeXml(element.uri)}'`;
  const defaultNs = element.uri === NS.streams ? parentNs : element.uri;
  const keep = Object.keys(element.attrs).filter((key) => !key.includes(':') || key === 'xml:lang');
  const open = `<${name}${ns}${attributes(element.attrs, keep)}`;
  const inner = escapeXml(element.text) + element.children.map((c) => serializeElement(c, defaultNs)).join('');
  return inner === '' ? `${open}/>` : `${open}>${inner}</${name}>`;
}
