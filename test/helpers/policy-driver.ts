import { OnionMap } from '../../src/onionmap/onion-map.js';
import type { Action, Phase } from '../../src/policy/negotiation.js';
import type { RelayWalkers } from '../../src/policy/tls-records.js';
import { decideRoute, type RouteDecision } from '../../src/policy/routing.js';
import { Negotiator } from '../../src/policy/negotiator.js';
import { helloRecord } from './tls-hello.js';

export type TranscriptStep =
  | { readonly from: 'client' | 'server'; readonly data: string | Buffer }
  | { readonly event: 'timeout' | 'client-eof' | 'server-eof' };

export interface Outcome {
  readonly phase: Phase;
  readonly refusal?: string;
  readonly condition?: string;
  readonly text?: string;
  readonly toServer: Buffer;
  readonly toClient: string;
  /** What the relay passed to the client after `<proceed/>` (the server's TLS, whitespace dropped). */
  readonly relayedToClient: Buffer;
  /** Why the relay cut the connection, as relay.ts would: `side: problem`. */
  readonly cut?: string;
  readonly connects: number;
  readonly actions: readonly Action[];
}

export const TEST_MAP = new OnionMap([
  { domain: 'retired.test', status: 'retired', port: 5222, note: 'retired.test retired its XMPP service', origin: 'test' },
  { domain: 'example.test', host: '127.0.0.1', status: 'no-onion', port: 5222, origin: 'test' },
]);

export function testRouting(domain: string): RouteDecision {
  return decideRoute(TEST_MAP, domain, { onionOnly: false });
}

export type Chunker = (data: Buffer) => Buffer[];
export const whole: Chunker = (data) => [data];
export const byteByByte: Chunker = (data) => [...data].map((b) => Buffer.from([b]));
export const splitAt = (at: number): Chunker => (data) => (at <= 0 || at >= data.length ? [data] : [data.subarray(0, at), data.subarray(at)]);

/**
 * Replays a transcript through the policy as the proxy would; upstream connects succeed at once.
 * After `<proceed/>` the bytes go through the relay's walkers as src/proxy/relay.ts passes them:
 * checked, leading whitespace dropped, the rest passed on.
 */
export function runTranscript(steps: readonly TranscriptStep[], chunker: Chunker = whole, route = testRouting): Outcome {
  const negotiator = new Negotiator({ decideRoute: route, streamId: 'test', maxHeldBytes: 32 * 1024 });
  const actions: Action[] = [];
  const toServer: Buffer[] = [];
  let toClient = '';
  const relayedToClient: Buffer[] = [];
  let walkers: RelayWalkers | undefined;
  let cut: string | undefined;
  let connects = 0;
  const apply = (batch: Action[]): void => {
    for (const action of batch) {
      actions.push(action);
      switch (action.type) {
        case 'connect':
          connects++;
          toServer.push(Buffer.from(action.first));
          apply(negotiator.event({ type: 'upstream-connected' }));
          break;
        case 'send':
          if (action.to === 'server') toServer.push(Buffer.from(action.data));
          else toClient += action.data;
          break;
        case 'start-relay':
          toServer.push(action.clientPreamble);
          walkers = action.walkers;
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
  for (const s of steps) {
    if ('event' in s) {
      if (s.event === 'timeout') apply(negotiator.event({ type: 'timeout', stage: 'negotiation', seconds: 1 }));
      else apply(negotiator.event({ type: 'eof', from: s.event === 'client-eof' ? 'client' : 'server' }));
      continue;
    }
    const data = typeof s.data === 'string' ? Buffer.from(s.data) : s.data;
    for (const chunk of chunker(data)) {
      if (!walkers) {
        apply(s.from === 'client' ? negotiator.fromClient(chunk) : negotiator.fromServer(chunk));
        continue;
      }
      const walker = s.from === 'client' ? walkers.client : walkers.server;
      const problem = cut ? undefined : walker.check(chunk);
      if (problem) cut = `${s.from}: ${problem}`;
      if (cut) continue;
      (s.from === 'client' ? toServer : relayedToClient).push(chunk.subarray(walker.leading));
    }
  }
  const refused = actions.find((a): a is Extract<Action, { type: 'refuse' }> => a.type === 'refuse');
  return {
    phase: negotiator.state.phase,
    ...(refused ? { refusal: refused.refusal.code, condition: refused.refusal.condition, text: refused.refusal.text } : {}),
    toServer: Buffer.concat(toServer),
    toClient,
    relayedToClient: Buffer.concat(relayedToClient),
    ...(cut ? { cut } : {}),
    connects,
    actions,
  };
}

// Canonical pieces of a negotiation.
export const CLIENT_HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0'>";
export const SERVER_HEADER = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='example.test' id='s1' version='1.0'>";
export const FEATURES_TLS = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>";
export const FEATURES_PLAIN_ONLY = "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>";
export const STARTTLS = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
export const PROCEED = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

/** A syntactically valid TLS handshake record (a ClientHello-shaped record of `size` body bytes). */
export function tlsHandshakeRecord(size = 200, role: 'client' | 'server' = 'client'): Buffer {
  return helloRecord(role, size - 6);
}
