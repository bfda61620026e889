/**
 * The private Tor network used by the end-to-end tests works, stays on
 * loopback, and shows the SOCKS5 replies Tor gives for each onion failure
 * (the daemon has to turn these into words for the user).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t from 'tap';
import {
  base32Encode,
  onionAddressFromPublicKey,
  processRssBytes,
  randomOnionAddress,
  socks5Connect,
  SOCKS5_REPLY_NAMES,
  TorControl,
  type Socks5Result,
} from '../helpers/tor-network.js';
import { claimTarget, useTorNetwork } from '../helpers/tor-shared.js';

// Nothing async at the top level after the first teardown is registered:
// tap ends the root test as soon as it is idle for two timer ticks from then
// on, so the rest of the set-up runs in t.before() (see tor-shared.ts).
const asked = Date.now();
const tor = await useTorNetwork(t);
const waitedMs = Date.now() - asked;

const hex = (code: number): string => (code < 0 ? 'no reply' : `0x${code.toString(16).padStart(2, '0')}`);
const describe = (r: Socks5Result): string =>
  `${hex(r.reply)} (${SOCKS5_REPLY_NAMES[r.reply] ?? r.error ?? 'unknown'}) in ${r.elapsedMs} ms`;

t.comment(`Tor network: ${tor.shared ? 'shared by this tap run' : 'private to this file'}; `
  + `start-up ${tor.startupMs} ms (keys ${tor.timings.keygenMs} ms, consensus with every relay at ${tor.timings.consensusMs} ms); `
  + `this file waited ${waitedMs} ms for it`);
t.comment(`first onion CONNECT per service (ms): ${JSON.stringify(tor.timings.firstConnectMs)}; `
  + `failed probes before it: ${JSON.stringify(tor.timings.probeFailures)}`);
t.comment(`memory: ${(tor.pids.reduce((sum, pid) => sum + processRssBytes(pid), 0) / 2 ** 20).toFixed(0)} MiB RSS in ${tor.pids.length} tor processes`);

/** A v3 onion address for a fresh key, with its two checksum bytes inverted. */
function badChecksumOnion(): string {
  const pub = crypto.generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const good = onionAddressFromPublicKey(pub);
  const version = Buffer.from([3]);
  const checksum = crypto.createHash('sha3-256')
    .update(Buffer.concat([Buffer.from('.onion checksum'), pub, version])).digest().subarray(0, 2);
  const bad = `${base32Encode(Buffer.concat([pub, Buffer.from([checksum[0]! ^ 0xff, checksum[1]! ^ 0xff]), version]))}.onion`;
  if (bad === good) throw new Error('checksum inversion did nothing');
  return bad;
}

/** Start an echo server on 127.0.0.1:port (0 = any); closed in teardown. */
async function echoServer(port: number): Promise<number> {
  const server = net.createServer((sock) => {
    sock.on('error', () => {});
    sock.pipe(sock);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

async function echoRoundTrip(sock: net.Socket, size: number): Promise<boolean> {
  const payload = crypto.randomBytes(size);
  const chunks: Buffer[] = [];
  let got = 0;
  const done = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 30_000);
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= size) {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks).subarray(0, size).equals(payload));
      }
    });
    sock.once('close', () => { clearTimeout(timer); resolve(false); });
  });
  sock.write(payload);
  return done;
}

/**
 * One CONNECT; an onion circuit can fail transiently (0xF2 introduction
 * failed, 0xF3 rendezvous failed, 0xF7 introduction timed out) on a busy
 * machine, so those — and only those — are retried a couple of times when
 * another reply is expected.
 */
async function connect(socksPort: number, host: string, port: number, expected: number): Promise<Socks5Result> {
  const transient = new Set([0xf2, 0xf3, 0xf7]);
  let r: Socks5Result | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    r = await socks5Connect({ socksPort, host, port, timeoutMs: 60_000 });
    if (r.reply === expected || !transient.has(r.reply)) break;
    t.comment(`transient ${hex(r.reply)} for ${host}:${port}, retrying`);
  }
  return r!;
}

t.before(async () => {
  await echoServer(await claimTarget(t, tor, 'fake1'));
});

t.test('(a) an onion with a listener behind it: CONNECT succeeds and bytes echo back', async (t) => {
  const r = await connect(tor.socksPort, tor.onions.fake1, 5222, 0);
  t.equal(r.reply, 0, `fake1 onion: ${describe(r)}`);
  if (!r.socket) return;
  t.ok(await echoRoundTrip(r.socket, 64 * 1024), '64 KiB echo back through Tor intact');
  r.socket.destroy();
  t.comment(`CONNECT to the fake1 onion took ${r.elapsedMs} ms`);
});

t.test('onion addresses computed here match the ones tor derives from its own keys', async (t) => {
  for (const name of ['prosody', 'fake1'] as const) {
    // hs_ed25519_public_key: a 32-byte "== ed25519v1-public: type0 ==" header, then the key.
    const file = path.join(tor.dir, 'onions', 'hs', name, 'hs_ed25519_public_key');
    const key = fs.readFileSync(file).subarray(32);
    t.equal(onionAddressFromPublicKey(key), tor.onions[name], `${name}: ${tor.onions[name]}`);
  }
  t.match(randomOnionAddress(), /^[a-z2-7]{55}d\.onion$/, 'a random v3 address is 56 base32 characters ending in "d" (version 3)');
});

const observed: Array<[string, string, string]> = [];

interface Case {
  label: string;
  host: () => string;
  port: number;
  extended: number;
  plain: number;
}

const cases: Case[] = [
  { label: '(b) well-formed v3 onion that does not exist', host: randomOnionAddress, port: 5222, extended: 0xf0, plain: 0x04 },
  { label: '(c) v3 onion with a bad checksum', host: badChecksumOnion, port: 5222, extended: 0xf6, plain: 0x01 },
  { label: '(c\') v2-style 16-character onion', host: () => 'ijeeynrc6x2uy5ob.onion', port: 5222, extended: 0xf6, plain: 0x01 },
  { label: '(d) onion up, nothing listening on its target', host: () => tor.onions.down, port: 5222, extended: 0x01, plain: 0x01 },
  { label: '(e) onion up, virtual port not mapped', host: () => tor.onions.fake1, port: 5999, extended: 0x05, plain: 0x05 },
];

t.test('reply codes through the ExtendedErrors SocksPort', async (t) => {
  for (const c of cases) {
    const host = c.host();
    const r = await connect(tor.socksPort, host, c.port, c.extended);
    r.socket?.destroy();
    t.equal(hex(r.reply), hex(c.extended), `${c.label}: ${describe(r)}`);
    observed.push([c.label, 'ExtendedErrors', hex(r.reply)]);
  }
});

t.test('reply codes through the plain SocksPort (no ExtendedErrors, like Tails 9050)', async (t) => {
  for (const c of cases) {
    const host = c.host();
    const r = await connect(tor.plainSocksPort, host, c.port, c.plain);
    r.socket?.destroy();
    t.equal(hex(r.reply), hex(c.plain), `${c.label}: ${describe(r)}`);
    observed.push([c.label, 'plain', hex(r.reply)]);
  }
});

t.test('a 127.0.0.1 server is reachable through the private network\'s exit', async (t) => {
  // The exit relay has ExitPolicy accept 127.0.0.1:* and the client uses full
  // descriptors (see tor-network.ts). Only ever connect to a port that
  // listens here: a refused connect comes back as END "misc", which the client
  // retries and then holds against the address 127.0.0.1 for a while.
  const port = await echoServer(0);
  // Seen once in ~20 networks: the first stream right after start-up hung
  // (the client briefly had no usable exit); a second try gets through.
  let r = await socks5Connect({ socksPort: tor.socksPort, host: '127.0.0.1', port, timeoutMs: 30_000 });
  if (r.reply !== 0) {
    t.comment(`first try via the exit: ${describe(r)}; trying once more`);
    r = await socks5Connect({ socksPort: tor.socksPort, host: '127.0.0.1', port, timeoutMs: 30_000, username: 'retry', password: 'x' });
  }
  t.equal(r.reply, 0, `127.0.0.1:${port} via the exit: ${describe(r)}`);
  if (!r.socket) return;
  t.ok(await echoRoundTrip(r.socket, 4096), 'echo through the exit');
  r.socket.destroy();
});

t.test('the client control port takes the password and answers GETINFO circuit-status', async (t) => {
  const ctl = await TorControl.connect(tor.controlPort, tor.controlPassword);
  try {
    const circuits = await ctl.getInfo('circuit-status');
    t.match(circuits, /BUILT/, 'some circuits are built');
    t.match(await ctl.getInfo('status/bootstrap-phase'), /PROGRESS=100/, 'client bootstrapped');
  } finally {
    ctl.close();
  }
});

/* ----------------------------------------------------------- (f) loopback */

interface SocketEntry {
  proto: string;
  local: string;
  remote: string;
  state: string;
  inode: string;
}

function decodeAddr(hexAddr: string, v6: boolean): string {
  const [a = '', p = '0'] = hexAddr.split(':');
  const port = parseInt(p, 16);
  if (!v6) {
    const bytes = a.match(/../g)!.map((b) => parseInt(b, 16)).reverse();
    return `${bytes.join('.')}:${port}`;
  }
  // 4 little-endian 32-bit words.
  const words = a.match(/.{8}/g)!.map((w) => w.match(/../g)!.reverse().join(''));
  return `[${words.join('').match(/.{4}/g)!.join(':')}]:${port}`;
}

function readSocketTable(proto: 'tcp' | 'tcp6' | 'udp' | 'udp6'): SocketEntry[] {
  const lines = fs.readFileSync(`/proc/net/${proto}`, 'utf8').trim().split('\n').slice(1);
  return lines.map((line) => {
    const f = line.trim().split(/\s+/);
    const v6 = proto.endsWith('6');
    return { proto, local: decodeAddr(f[1] ?? '', v6), remote: decodeAddr(f[2] ?? '', v6), state: f[3] ?? '', inode: f[9] ?? '' };
  });
}

function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    } catch { /* fd closed meanwhile */ }
  }
  return inodes;
}

t.test('(f) every tor process listens on, and talks to, 127.0.0.1 only', async (t) => {
  const tables = (['tcp', 'tcp6', 'udp', 'udp6'] as const).flatMap(readSocketTable);
  let listening = 0;
  let connected = 0;
  const offenders: string[] = [];
  for (const pid of tor.pids) {
    t.ok(fs.existsSync(`/proc/${pid}`), `tor pid ${pid} is running`);
    const inodes = socketInodes(pid);
    for (const s of tables.filter((e) => inodes.has(e.inode))) {
      const isListen = s.proto.startsWith('tcp') && s.state === '0A';
      if (isListen) listening++;
      else connected++;
      const localOk = s.proto === 'tcp' && s.local.startsWith('127.0.0.1:');
      const remoteOk = isListen ? s.remote === '0.0.0.0:0' : s.remote.startsWith('127.0.0.1:');
      if (!localOk || !remoteOk) offenders.push(`pid ${pid} ${s.proto} ${s.local} -> ${s.remote} state ${s.state}`);
    }
  }
  t.ok(listening >= tor.pids.length, `found ${listening} listening sockets (every tor listens on something)`);
  t.same(offenders, [], `all ${listening} listening and ${connected} other sockets are IPv4 127.0.0.1`);
});

t.test('summary of the replies', async (t) => {
  const width = Math.max(...observed.map(([l]) => l.length));
  for (const [label, port, code] of observed) t.comment(`${label.padEnd(width)}  ${port.padEnd(14)}  ${code}`);
  t.comment(`memory now: ${(tor.pids.reduce((sum, pid) => sum + processRssBytes(pid), 0) / 2 ** 20).toFixed(0)} MiB RSS in ${tor.pids.length} tor processes`);
  t.pass(`${observed.length} replies recorded`);
});
