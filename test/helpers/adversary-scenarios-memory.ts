/**
 * Bounded memory (issue 13, item 0): an element the policy refuses is refused at its start tag,
 * not held until its end; a reader holds at most 128 elements; and the connections still
 * negotiating hold at most --pre-tls-memory together (past it, new ones get resource-constraint,
 * and connections already relaying are not touched). The flood itself, against the built
 * daemon and its RSS, is test/adversarial/memory-flood.ts.
 */
import { randomBytes } from 'node:crypto';
import {
  clientHeaderIn, DOMAIN, FEATURES_OUT, HONEST_DOMAIN, ourError, PROCEED_OUT, serverHeaderIn, serverHeaderOut, STARTTLS_IN,
  type ServerScript,
} from './adversary-arena.js';
import { readTls } from './adversary-peers.js';
import { expectClosed, sameText, until, type Scenario } from './adversary-scenario.js';
import { DEFAULT_XML_LIMITS } from '../../src/policy/xml-events.js';
import { negotiationWorstBytes } from '../../src/proxy/negotiation-memory.js';

const NOTHING = 'nothing was sent to the server';

/** Reads the client's header and never answers: a server slow to speak. */
const silent: ServerScript = async (peer) => {
  await peer.closed;
};

const SLOTS = 4;

export const memoryScenarios: Scenario[] = [
  {
    group: 'memory',
    name: 'a client sends <x> and 16,000 <a/> (64 KB, under the byte budget) while the server is silent: refused at <x>, nothing held',
    arena: { server: silent },
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid) + '<x>' + '<a/>'.repeat(16_000));
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), ourError('policy-violation', `your client sent <x> where only <starttls/> is allowed before encryption; ${NOTHING}`, { id: c.id, from: DOMAIN }),
        'client: refused at the start tag, in words');
      for (const server of arena.upstream.peers) t.notOk(server.text().includes('<x'), 'server: nothing of it');
      await arena.serveHonest(t);
    },
  },
  {
    group: 'memory',
    name: 'a client sends <message> and a body that never ends: refused at <message>, before its body',
    arena: { server: silent },
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid) + `<message to='a@b'><body>${arena.secrets.body}`);
      await expectClosed(t, c, 'client');
      sameText(t, c.text(), ourError('policy-violation', `your client sent a <message> stanza before encryption was set up; ${NOTHING}`, { id: c.id, from: DOMAIN }), 'client');
    },
  },
  {
    group: 'memory',
    name: 'a server sends features with 16,000 <a/> inside (under the byte budget): refused past 128 elements, nothing passed on',
    arena: {
      server: async (peer) => {
        await peer.waitFor('>', await peer.waitFor('<stream:stream'));
        peer.write(serverHeaderIn(DOMAIN) + '<stream:features>' + '<a/>'.repeat(16_000));
        await peer.closed;
      },
    },
    async run(t, arena) {
      const c = await arena.client();
      c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await expectClosed(t, c, 'client');
      t.ok(c.text().startsWith(serverHeaderOut(DOMAIN) + '<stream:error><policy-violation '), 'client: the server header, then a policy-violation');
      t.ok(c.text().includes('more than 128 elements'), 'client: the reason in words');
      t.notOk(c.text().includes('<a/>') || c.text().includes('<stream:features>'), 'client: none of the features');
      await arena.serveHonest(t);
    },
  },
  {
    group: 'memory',
    name: `--pre-tls-memory for ${SLOTS} negotiations: the next is refused with resource-constraint, an established session is untouched, a freed slot is used again`,
    arena: { server: silent, daemon: { preTlsMemoryBytes: SLOTS * negotiationWorstBytes(DEFAULT_XML_LIMITS) } },
    async run(t, arena) {
      t.same(arena.daemon.proxy.negotiating, { now: 0, limit: SLOTS }, `${SLOTS} slots`);
      // An honest session, relaying before the others come: it holds no slot.
      const honest = await arena.client();
      honest.write(clientHeaderIn(HONEST_DOMAIN, `someone@${HONEST_DOMAIN}`));
      await honest.waitFor(FEATURES_OUT);
      honest.write(STARTTLS_IN);
      const secure = await honest.tlsClient(await honest.waitFor(PROCEED_OUT), HONEST_DOMAIN, arena.pki.ca);
      t.same(arena.daemon.proxy.negotiating.now, 0, 'a relaying session holds no slot');
      const waiting = [];
      for (let i = 0; i < SLOTS; i++) {
        const c = await arena.client();
        c.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
        waiting.push(c);
      }
      const over = await arena.client();
      over.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await expectClosed(t, over, 'over the bound');
      sameText(t, over.text(), ourError('resource-constraint',
        `the proxy is already setting up ${SLOTS} connections, all the memory it allows for that (--pre-tls-memory ${SLOTS * negotiationWorstBytes(DEFAULT_XML_LIMITS) / 2 ** 20} MiB); try again later`, { id: over.id }),
      'over the bound: resource-constraint, in words');
      const ping = randomBytes(8).toString('hex');
      secure.write(ping);
      t.equal((await readTls(secure, ping.length)).toString(), ping, 'the established session still relays');
      waiting[0]!.socket.destroy();
      await waiting[0]!.closed;
      await until(() => arena.daemon.proxy.negotiating.now < SLOTS, 'a slot freed');
      const next = await arena.client();
      next.write(clientHeaderIn(DOMAIN, arena.secrets.jid));
      await until(() => arena.daemon.proxy.negotiating.now === SLOTS, 'the slot taken again');
      t.pass('a freed slot is taken by the next connection');
      t.notOk(next.closeInfo, 'and it is not refused');
      for (const c of [...waiting, next]) c.socket.destroy();
      secure.destroy();
      await expectClosed(t, honest, 'honest');
    },
  },
];
