// The fuzz invariants can fail: each is shown a run that breaks it (a negative control), and the
// defects the fuzzer found stay here as fixed regression cases.
import t from 'tap';
import { CANON, drive, violations, type Run, type Step } from '../helpers/adversary-fuzz.js';

const NS_S = 'http://etherx.jabber.org/streams';
const UPSTREAM = `${CANON.decl}<stream:stream xmlns='jabber:client' xmlns:stream='${NS_S}' to='example.test' version='1.0'>`;
const SERVER = `${CANON.decl}<stream:stream xmlns='jabber:client' xmlns:stream='${NS_S}' id='s' version='1.0'>`;
const good: Run = {
  phase: 'Relaying',
  actions: [
    { type: 'send', to: 'client', data: CANON.proceed },
    { type: 'start-relay', clientPreamble: Buffer.alloc(0), walkers: undefined as never },
  ],
  toServer: Buffer.from(UPSTREAM + CANON.starttls),
  preamble: Buffer.alloc(0),
  clientFedAtRelay: Buffer.from(`<stream:stream>${CANON.starttls}`),
  toClient: SERVER + CANON.features + CANON.proceed,
  problems: [],
};

t.same(violations(good), [], 'a clean run passes');
const broken: Array<[string, Partial<Run>, RegExp]> = [
  ['a client element forwarded', { toServer: Buffer.from(UPSTREAM + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>CLI_MARK</auth>") }, /to the server/],
  ["the client's from forwarded", { toServer: Buffer.from(UPSTREAM.replace("to=", "from='a@b' to=") + CANON.starttls) }, /to the server/],
  ['server features passed on', { toClient: SERVER + '<stream:features><mechanisms/></stream:features>' }, /to the client/],
  ['a server marker in the header', { toClient: SERVER.replace("id='s'", "id='SRV_MARK'") + CANON.features + CANON.proceed }, /server marker/],
  ['bytes after <proceed/>', { toClient: SERVER + CANON.features + CANON.proceed + '<x/>' }, /to the client|after <proceed/],
  ['two decisions', { actions: [...good.actions, { type: 'close', reason: 'x' }] }, /2 decisions/],
  ['a preamble that is not TLS', { preamble: Buffer.from('hello'), clientFedAtRelay: Buffer.from(`${CANON.starttls}hello`) }, /not well-framed TLS/],
  ['a preamble that is not the client tail', { preamble: Buffer.from([22, 3, 1, 0, 1, 1]), clientFedAtRelay: Buffer.from(CANON.starttls) }, /last bytes/],
];
for (const [name, patch, expected] of broken) {
  t.match(violations({ ...good, ...patch }).join('; '), expected, `caught: ${name}`);
}
t.match(violations({ ...good, phase: 'AwaitProceed', actions: [] }, { decided: true }).join('; '), /0 decisions after the final timeout/, 'caught: no decision');

const C = (data: string | Buffer): Step => ({ from: 'client', data: Buffer.from(data) });
const S = (data: string | Buffer): Step => ({ from: 'server', data: Buffer.from(data) });
const clientHeader = `<stream:stream to='example.test' version='1.0' xmlns='jabber:client' xmlns:stream='${NS_S}'>`;
const serverHeader = `<stream:stream version='1.0' xmlns='jabber:client' xmlns:stream='${NS_S}'>`;
const features = `<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>`;

// Found by test/fuzz/negotiation-hostile.ts: saxes reports a mismatched end tag only after
// emitting the close, so `<starttls …></Atarttls>` passed for <starttls/> (and the same for <proceed/>).
for (const sizes of [[1], [3], [4096]]) {
  const client = drive([C(clientHeader + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></Atarttls>"), S(serverHeader + features)], sizes, { final: 'timeout' });
  t.match(client.actions.find((a) => a.type === 'refuse'), { refusal: { code: 'client-not-well-formed' } }, `a mismatched </starttls> is not well-formed (chunks of ${sizes[0]})`);
  t.equal(client.toServer.toString(), UPSTREAM + CANON.starttls, 'and the server got our opening only (pipelined), nothing of the client\'s');
  const server = drive([C(clientHeader + CANON.starttls), S(serverHeader + features + "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'></proceeX>")], sizes, { final: 'timeout' });
  t.match(server.actions.find((a) => a.type === 'refuse'), { refusal: { code: 'server-not-well-formed' } }, `a mismatched </proceed> is not well-formed (chunks of ${sizes[0]})`);
  t.notOk(server.toClient.includes('<proceed'), 'and no <proceed/> reached the client');
}
