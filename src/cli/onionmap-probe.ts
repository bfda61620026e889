import type net from 'node:net';
import type { Route } from '../policy/routing.js';
import { child, is, NS, type XmlElement } from '../policy/xml-element.js';
import { XmlEventReader } from '../policy/xml-events.js';
import { STREAM_CLOSE, streamHeader, XML_DECLARATION } from '../policy/serialize.js';
import type { Endpoint } from '../common/endpoint.js';
import { UpstreamError } from '../common/errors.js';
import { newIsolationKey } from '../proxy/isolation.js';
import { connectThroughTor } from '../proxy/tor-connect.js';
import { TOR_WORDS } from '../policy/tor-words.js';
import { seconds as secondsWords } from '../common/words.js';

export type ProbeResult =
  | { readonly kind: 'alive'; readonly required: boolean; readonly ms: number }
  | { readonly kind: 'no-starttls'; readonly words: string; readonly ms: number }
  | { readonly kind: 'dead'; readonly reason: string; readonly words: string; readonly ms: number };

export interface ProbeOptions {
  readonly tor: Endpoint;
  readonly route: Route;
  /** Sent as the stream header's `to`, as a client would. */
  readonly domain: string;
  /** For the whole probe: Tor's connect, then the server's header and features. */
  readonly timeoutMs: number;
}

type Outcome = { kind: 'alive'; required: boolean } | { kind: 'no-starttls'; words: string } | { kind: 'dead'; reason: string; words: string };

/**
 * Opens a stream as a client would (RFC 6120 §4.2) and reads only the server's stream header and
 * features (§4.3.2): enough to see that it speaks XMPP and offers STARTTLS (§5.3.1). Nothing else is
 * sent, and the stream is closed right after, before any authentication.
 */
export async function probeXmpp(options: ProbeOptions): Promise<ProbeResult> {
  const started = Date.now();
  let socket: net.Socket | undefined;
  let timer: NodeJS.Timeout | undefined;
  const seconds = Math.round(options.timeoutMs / 1000);
  const deadline = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'dead', reason: 'timeout', words: `no answer within ${secondsWords(seconds)}` }), options.timeoutMs);
  });
  const work = (async (): Promise<Outcome> => {
    try {
      // A fresh SOCKS key per probe: its own circuit, as the daemon's per-connection isolation.
      socket = await connectThroughTor({ tor: options.tor, route: options.route, timeoutMs: options.timeoutMs, isolationKey: newIsolationKey() });
    } catch (error) {
      if (error instanceof UpstreamError) return { kind: 'dead', reason: error.reason, words: error.words };
      return { kind: 'dead', reason: 'tor-error', words: TOR_WORDS.failed };
    }
    return readFeatures(socket, options.domain);
  })();
  try {
    const outcome = await Promise.race([work, deadline]);
    return { ...outcome, ms: Date.now() - started };
  } finally {
    clearTimeout(timer);
    // A connect that finishes after the deadline still hands its socket over: close it then.
    void work.finally(() => socket?.destroy());
    socket?.destroy();
  }
}

function readFeatures(socket: net.Socket, domain: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const reader = new XmlEventReader({ stopAfter: (element) => is(element, NS.streams, 'features') || is(element, NS.streams, 'error') });
    let sawHeader = false;
    let settled = false;
    const finish = (outcome: Outcome): void => {
      if (settled) return;
      settled = true;
      if (!socket.destroyed) socket.end(STREAM_CLOSE);
      resolve(outcome);
    };
    socket.on('error', () => {});
    socket.on('close', () => finish({
      kind: 'dead',
      reason: 'closed',
      words: sawHeader ? 'the server closed the connection before offering its features' : 'the connection was closed before the server said anything',
    }));
    socket.on('data', (chunk: Buffer) => {
      for (const event of reader.feed(chunk)) {
        switch (event.kind) {
          case 'header':
            sawHeader = true;
            if (!is(event.header, NS.streams, 'stream')) finish({ kind: 'dead', reason: 'not-xmpp', words: 'the server did not answer with an XMPP stream header' });
            break;
          case 'element':
            if (is(event.element, NS.streams, 'error')) finish({ kind: 'dead', reason: 'stream-error', words: describeStreamError(event.element) });
            else if (is(event.element, NS.streams, 'features')) finish(judgeFeatures(event.element));
            break;
          case 'end':
            finish({ kind: 'dead', reason: 'closed', words: 'the server ended the stream before offering its features' });
            break;
          case 'violation':
            finish({ kind: 'dead', reason: 'not-xmpp', words: `the server did not speak XMPP (${event.violation.detail})` });
            break;
        }
      }
    });
    socket.write(XML_DECLARATION + streamHeader({ to: domain, version: '1.0' }, ['to', 'version']));
    socket.resume();
  });
}

function judgeFeatures(features: XmlElement): Outcome {
  const starttls = child(features, NS.tls, 'starttls');
  if (starttls) return { kind: 'alive', required: child(starttls, NS.tls, 'required') !== undefined };
  const offered = features.children.map((c) => c.local);
  return {
    kind: 'no-starttls',
    words: `the server offers no STARTTLS${offered.length > 0 ? ` (only ${offered.join(', ')})` : ''}: the daemon would refuse this connection`,
  };
}

function describeStreamError(error: XmlElement): string {
  const condition = error.children.find((c) => c.uri === NS.streamErrors && c.local !== 'text')?.local ?? 'undefined-condition';
  if (condition === 'host-unknown') return 'the server answered host-unknown: it does not serve this domain';
  return `the server refused the stream (${condition})`;
}
