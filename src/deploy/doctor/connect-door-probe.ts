import net from 'node:net';
import { STREAM_ID_PREFIX } from '../../policy/negotiation-state.js';
import { XML_DECLARATION } from '../../policy/serialize.js';
import { is, NS } from '../../policy/xml-element.js';
import { XmlEventReader } from '../../policy/xml-events.js';

/**
 * Whether what listens at host:port answers like this daemon's connect-server door: it is sent
 * an XMPP stream header without `to`, which the daemon refuses at once, without going anywhere
 * (no server named, so nothing reaches Tor), with its own stream id and the condition of the
 * `client-no-domain` refusal. For when /proc cannot tell.
 */
export function answersLikeDaemon(host: string, port: number, timeoutMs = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    const reader = new XmlEventReader({ stopAfter: (element) => is(element, NS.streams, 'error') });
    let ours = false;
    const socket = net.connect({ host, port });
    const done = (answer: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    timer.unref();
    socket.once('connect', () => {
      socket.write(`${XML_DECLARATION}<stream:stream xmlns='jabber:client' xmlns:stream='${NS.streams}' version='1.0'>`);
    });
    socket.on('data', (chunk: Buffer) => {
      for (const event of reader.feed(chunk)) {
        if (event.kind === 'header') ours = event.header.attrs.id?.startsWith(STREAM_ID_PREFIX) === true;
        else if (event.kind === 'element') return done(ours && event.element.children.some((c) => is(c, NS.streamErrors, 'host-unknown')));
        else return done(false);
      }
    });
    socket.once('close', () => done(false));
    socket.once('error', () => done(false));
  });
}
