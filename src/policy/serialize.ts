import type { Refusal } from './refusals.js';
import { NS } from './xml-element.js';

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
 * The bytes a client gets on refusal (RFC 6120 §4.9.1.1): our own stream header first when it
 * has not seen one yet, then the error with its text, then the stream close.
 */
export function streamErrorXml(refused: Refusal, options: { withHeader: boolean; from?: string; id: string }): string {
  const header = options.withHeader
    ? XML_DECLARATION + streamHeader({ ...(options.from ? { from: options.from } : {}), id: options.id, version: '1.0' }, ['from', 'id', 'version'])
    : '';
  return (
    header +
    `<stream:error><${refused.condition} xmlns='${NS.streamErrors}'/>` +
    `<text xmlns='${NS.streamErrors}' xml:lang='en'>${escapeXml(refused.text)}</text></stream:error>` +
    STREAM_CLOSE
  );
}
