import { NS } from './xml-element.js';
import { escapeXml, streamHeader, STREAM_CLOSE, XML_DECLARATION } from './serialize.js';

/** RFC 6120 §4.9.3 stream error conditions that the daemon uses. */
export type StreamCondition =
  | 'bad-format'
  | 'connection-timeout'
  | 'host-gone'
  | 'host-unknown'
  | 'invalid-namespace'
  | 'not-well-formed'
  | 'policy-violation'
  | 'remote-connection-failed'
  | 'resource-constraint'
  | 'restricted-xml'
  | 'unsupported-version'
  | 'internal-server-error';

/** Why a connection was refused: a stable code for logs and counters, the condition and the words for the client. */
export interface Refusal {
  readonly code: string;
  readonly condition: StreamCondition;
  readonly text: string;
}

export function refusal(code: string, condition: StreamCondition, text: string): Refusal {
  return { code, condition, text };
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
