import { INITIAL_STATE, step, type Action, type NegotiationContext, type NegotiationEvent, type NegotiationState } from './negotiation.js';
import { CLIENT_READING } from './client-stream.js';
import { SERVER_READING } from './server-stream.js';
import { DEFAULT_XML_LIMITS, XmlEventReader, type XmlLimits } from './xml-events.js';

/**
 * Bytes from either side in, actions out: one XmlEventReader per side feeding `step`.
 * The client's reader stops after `<starttls/>` and the server's after `<proceed/>`;
 * bytes past those points are passed to the policy as raw bytes, never parsed as XML.
 * What each reader keeps is bounded by the XML limits, and an element the policy refuses is
 * decided on at its start tag.
 */
export class Negotiator {
  #state: NegotiationState = INITIAL_STATE;
  readonly #client: XmlEventReader;
  /** Made when the server first speaks: a connection refused before that never pays for it. */
  #server: XmlEventReader | undefined;
  readonly #ctx: NegotiationContext;
  readonly #limits: XmlLimits;

  constructor(ctx: NegotiationContext, limits: XmlLimits = DEFAULT_XML_LIMITS) {
    this.#ctx = ctx;
    this.#limits = limits;
    this.#client = new XmlEventReader(CLIENT_READING, limits);
  }

  get state(): NegotiationState {
    return this.#state;
  }

  /** True once the policy has decided for good: relaying, refused or closed. */
  get settled(): boolean {
    const phase = this.#state.phase;
    return phase === 'Relaying' || phase === 'Refused' || phase === 'Closed';
  }

  fromClient(chunk: Buffer): Action[] {
    return this.#feed('client', this.#client, chunk);
  }

  fromServer(chunk: Buffer): Action[] {
    this.#server ??= new XmlEventReader(SERVER_READING, this.#limits);
    return this.#feed('server', this.#server, chunk);
  }

  event(event: NegotiationEvent): Action[] {
    const next = step(this.#state, event, this.#ctx);
    this.#state = next.state;
    return [...next.actions];
  }

  #feed(from: 'client' | 'server', reader: XmlEventReader, chunk: Buffer): Action[] {
    if (this.settled) return [];
    if (reader.done) return this.event({ type: 'bytes', from, bytes: chunk });
    const actions: Action[] = [];
    for (const xml of reader.feed(chunk)) {
      actions.push(...this.event({ type: 'xml', from, event: xml }));
      if (this.settled) break;
    }
    return actions;
  }
}
