/** A parsed element, namespace-resolved; xmlns declarations are not kept as attributes. */
export interface XmlElement {
  readonly uri: string;
  readonly local: string;
  /** Attributes by qualified name (`to`, `xml:lang`, …). */
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: XmlElement[];
  text: string;
  /** The default namespace declared on this element, if any (needed for the stream header). */
  readonly defaultNs?: string;
}

export const NS = {
  streams: 'http://etherx.jabber.org/streams',
  client: 'jabber:client',
  tls: 'urn:ietf:params:xml:ns:xmpp-tls',
  sasl: 'urn:ietf:params:xml:ns:xmpp-sasl',
  streamErrors: 'urn:ietf:params:xml:ns:xmpp-streams',
  register: 'jabber:iq:register',
  compress: 'http://jabber.org/protocol/compress',
} as const;

export function is(element: XmlElement, uri: string, local: string): boolean {
  return element.uri === uri && element.local === local;
}

export function child(element: XmlElement, uri: string, local: string): XmlElement | undefined {
  return element.children.find((c) => is(c, uri, local));
}
