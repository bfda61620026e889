import { onClientTlsBytes, onClientXml } from './client-stream.js';
import { refuse, TERMINAL, type NegotiationContext, type NegotiationEvent, type NegotiationState, type Step } from './negotiation-state.js';
import { refusal } from './refusals.js';
import { onServerXml } from './server-stream.js';

export * from './negotiation-state.js';

/**
 * The STARTTLS policy: events from both sides in, decisions out, no I/O.
 * Before TLS only the negotiation passes (RFC 6120 §5.4.2), re-serialised by us; everything
 * else ends the connection with a stream error that says why. Terminal phases are sticky.
 */
export function step(state: NegotiationState, event: NegotiationEvent, ctx: NegotiationContext): Step {
  if (TERMINAL.has(state.phase)) return { state, actions: [] };
  switch (event.type) {
    case 'xml':
      return event.from === 'client' ? onClientXml(state, event.event, ctx) : onServerXml(state, event.event, ctx);
    case 'bytes':
      return event.from === 'client' ? onClientTlsBytes(state, event.bytes, ctx) : refuse(state, ctx, refusal('server-data-after-proceed'));
    case 'upstream-connected':
      if (state.phase !== 'AwaitUpstream') return { state, actions: [] };
      return { state: { ...state, phase: 'AwaitServerHeader' }, actions: [] };
    case 'upstream-failed':
      return refuse(state, ctx, event.refusal);
    case 'timeout':
      return refuse(state, ctx, refusal(event.stage === 'header' ? 'header-timeout' : 'negotiation-timeout', { seconds: event.seconds }));
    case 'eof':
      if (event.from === 'client') return { state: { ...state, phase: 'Closed' }, actions: [{ type: 'close', reason: 'client-closed' }] };
      return refuse(state, ctx, refusal('server-closed', { what: 'connection' }));
  }
}
