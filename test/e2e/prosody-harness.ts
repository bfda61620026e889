// The real-Prosody harness on its own, without our proxy: a private Prosody on
// 127.0.0.1, two independent real clients (@xmpp/client via test/fixtures/xmpp-client.mjs,
// and go-sendxmpp), and proof that TLS is both required and really verified.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createTestPki } from '../helpers/certs.js';
import { readStreamFeatures, startProsody } from '../helpers/prosody.js';
import { runGoSendxmpp, sendWithGoSendxmpp } from '../helpers/sendxmpp.js';
import { runXmppClient, startXmppClient, type XmppJob } from '../helpers/xmpp-client.js';

const alicePassword = randomBytes(12).toString('base64url');
const bobPassword = randomBytes(12).toString('base64url');

const started = Date.now();
const prosody = await startProsody({ users: [['alice', alicePassword], ['bob', bobPassword]], directTls: true });
t.teardown(() => prosody.stop());
t.comment(`prosody up on 127.0.0.1:${prosody.c2sPort} (direct TLS ${prosody.directTlsPort}) in ${Date.now() - started} ms`);

const { domain, caCertPath } = prosody;
const service = `xmpp://127.0.0.1:${prosody.c2sPort}`;
const alice = { service, domain, username: 'alice', password: alicePassword };
const bob = { service, domain, username: 'bob', password: bobPassword };
const clientOpts = { caCertPath, timeoutMs: 20_000 };

/** Fails the test with Prosody's log tail attached. */
function withLog(t: { comment(...message: unknown[]): void }, what: string, events: unknown, stderr = ''): void {
  t.comment(`${what}: events ${JSON.stringify(events)}\nstderr: ${stderr}\n${prosody.logTail(40)}`);
}

t.test('the c2s port requires STARTTLS before anything else', async (t) => {
  const features = await readStreamFeatures(prosody.c2sPort, domain);
  t.match(features, /<starttls xmlns=['"]urn:ietf:params:xml:ns:xmpp-tls['"]>\s*<required\s*\/>\s*<\/starttls>/);
  t.match(features, /<required/);
  t.notMatch(features, /<mechanisms/, 'no SASL offered before TLS');
});

t.test('alice (@xmpp/client) sends bob a chat message, byte-exact', async (t) => {
  const body = `Grüße <&> "quoted" 'apos' ]]> 🧅 ünïcödé — ${randomBytes(6).toString('hex')}\n  second line\twith tab  `;
  const receiver = startXmppClient({ ...bob, resource: 'receiver', actions: [{ do: 'receive', count: 1, from: 'alice@example.test' }] }, clientOpts);
  t.teardown(() => receiver.stop());
  await receiver.waitFor('online');

  const sent = await runXmppClient({ ...alice, actions: [{ do: 'send', to: 'bob@example.test', body }] }, clientOpts);
  if (sent.code !== 0) withLog(t, 'alice', sent.events, sent.stderr);
  t.equal(sent.code, 0, 'alice exits 0');
  t.match(sent.events.map((e) => e.event), ['online', 'sent', 'done']);

  const message = await receiver.waitFor('message');
  t.match(message.from, /^alice@example\.test\//);
  t.equal(message.type, 'chat');
  t.ok(Buffer.from(String(message.body), 'utf8').equals(Buffer.from(body, 'utf8')), 'body arrives byte for byte');
  t.equal(message.body, body);
  const result = await receiver.result;
  t.equal(result.code, 0, 'bob exits 0 after his one message');
});

t.test('alice joins a MUC room and talks in it', async (t) => {
  const room = `room-${randomBytes(4).toString('hex')}@conference.${domain}`;
  const r = await runXmppClient(
    { ...alice, actions: [{ do: 'join', room: `${room}/Alice` }, { do: 'groupchat', room, body: 'hello room ✓' }] },
    clientOpts,
  );
  if (r.code !== 0) withLog(t, 'alice', r.events, r.stderr);
  t.equal(r.code, 0);
  const joined = r.events.find((e) => e.event === 'joined');
  t.ok(joined, 'joined event');
  t.match(joined, { room, nick: 'Alice', from: `${room}/Alice`, affiliation: 'owner', role: 'moderator' });
  t.match(joined?.codes, ['201', '110'], 'new room (201), self-presence (110), unlocked at once');
  t.match(r.events.find((e) => e.event === 'groupchat'), { from: `${room}/Alice`, body: 'hello room ✓' });
});

t.test('go-sendxmpp (a second real client) sends bob a message', async (t) => {
  const body = `from go-sendxmpp ${randomBytes(6).toString('hex')} <&>`;
  const receiver = startXmppClient({ ...bob, actions: [{ do: 'receive', from: 'alice@example.test' }] }, clientOpts);
  t.teardown(() => receiver.stop());
  await receiver.waitFor('online');
  await sendWithGoSendxmpp({
    jidUser: 'alice', domain, password: alicePassword, hostPort: `127.0.0.1:${prosody.c2sPort}`,
    to: 'bob@example.test', body, caCertPath,
  });
  const message = await receiver.waitFor('message');
  t.match(message.from, /^alice@example\.test\/go-sendxmpp\./);
  t.equal(message.body, body);
});

t.test('go-sendxmpp over direct TLS (-t) checks the JID domain too', async (t) => {
  const body = `direct tls ${randomBytes(6).toString('hex')}`;
  const receiver = startXmppClient({ ...bob, actions: [{ do: 'receive', from: 'alice@example.test' }] }, clientOpts);
  t.teardown(() => receiver.stop());
  await receiver.waitFor('online');
  await sendWithGoSendxmpp({
    jidUser: 'alice@example.test', domain, password: alicePassword, hostPort: `127.0.0.1:${prosody.directTlsPort}`,
    to: 'bob@example.test', body, caCertPath, directTls: true,
  });
  t.equal((await receiver.waitFor('message')).body, body);
});

t.test('the clients really verify the certificate', async (t) => {
  const otherDir = await mkdtemp(path.join(os.tmpdir(), 'xop-otherca-'));
  t.teardown(() => rm(otherDir, { recursive: true, force: true }));
  const other = await createTestPki(otherDir, [domain]);

  const untrusting = await runXmppClient({ ...alice, actions: [] }, { ...clientOpts, caCertPath: other.caCertPath });
  t.equal(untrusting.code, 1, '@xmpp/client refuses a CA it was not given');
  t.match(untrusting.events.at(-1), { event: 'error', code: /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER_CERT/ });

  // @xmpp/client 0.14 checks a direct-TLS (xmpps://) server against the host of the
  // service URI — here the IP address — not against the domain.
  const direct = await runXmppClient({ ...alice, service: `xmpps://127.0.0.1:${prosody.directTlsPort}`, actions: [] }, clientOpts);
  t.equal(direct.code, 1);
  t.match(direct.events.at(-1), { event: 'error', code: 'ERR_TLS_CERT_ALTNAME_INVALID', message: /127\.0\.0\.1/ });

  const goUntrusting = await runGoSendxmpp({
    jidUser: 'alice', domain, password: alicePassword, hostPort: `127.0.0.1:${prosody.c2sPort}`,
    to: 'bob@example.test', body: 'never delivered', caCertPath: other.caCertPath,
  });
  t.equal(goUntrusting.code, 1, 'go-sendxmpp refuses a CA it was not given');
  t.match(goUntrusting.stderr, /x509: certificate signed by unknown authority/);

  const wrongPassword = await runXmppClient({ ...alice, password: 'not-the-password', actions: [] } satisfies XmppJob, clientOpts);
  t.equal(wrongPassword.code, 1);
  t.match(wrongPassword.events.at(-1), { event: 'error', condition: 'not-authorized' });
});

t.test('prosody runs as its own process, and stop() leaves nothing behind', async (t) => {
  // spawnTied() exec()s prosody through `setpriv --pdeathsig`: the pid we hold is Prosody's.
  t.equal((await readFile(path.join(prosody.dir, 'prosody.pid'), 'utf8')).trim(), String(prosody.pid));

  const small = await startProsody({ muc: false, logLevel: 'info' });
  t.equal(small.mucDomain, undefined);
  t.equal(small.directTlsPort, undefined);
  t.not(small.c2sPort, prosody.c2sPort);
  t.match(await readStreamFeatures(small.c2sPort, small.domain), /<starttls/);
  await small.stop();
  await small.stop(); // idempotent
  t.throws(() => process.kill(small.pid, 0), { code: 'ESRCH' }, 'process gone');
  await t.rejects(readFile(small.configPath), { code: 'ENOENT' }, 'temp folder gone');
  await t.rejects(readStreamFeatures(small.c2sPort, small.domain), { code: 'ECONNREFUSED' }, 'port closed');
});

t.test('no password ever reaches the log or the outputs', async (t) => {
  const log = await readFile(prosody.logPath, 'utf8');
  for (const secret of [alicePassword, bobPassword]) {
    t.notOk(log.includes(secret), 'not in the Prosody log');
    t.notOk(log.includes(Buffer.from(`\0alice\0${secret}`).toString('base64')), 'no PLAIN payload in the log');
  }
});
