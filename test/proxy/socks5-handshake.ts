import t from 'tap';
import { Socks5Handshake, type HandshakeStep } from '../../src/proxy/socks5-handshake.js';

function run(chunks: Buffer[]): { steps: HandshakeStep[]; written: Buffer } {
  const handshake = new Socks5Handshake();
  const steps = chunks.map((chunk) => handshake.feed(chunk));
  return { steps, written: Buffer.concat(steps.flatMap((s) => (s.write ? [s.write] : []))) };
}

const domainRequest = (host: string, port: number, command = 1): Buffer =>
  Buffer.concat([Buffer.from([5, command, 0, 3, host.length]), Buffer.from(host), Buffer.from([port >> 8, port & 255])]);

const cases: Array<{ name: string; bytes: Buffer; last: Partial<HandshakeStep> & { type: HandshakeStep['type'] }; written: number[]; request?: object; rest?: string }> = [
  {
    name: 'no authentication, CONNECT to a host name',
    bytes: Buffer.concat([Buffer.from([5, 1, 0]), domainRequest('example.test', 5222)]),
    last: { type: 'request' },
    written: [5, 0],
    request: { host: 'example.test', port: 5222, addressType: 'domain' },
  },
  {
    name: 'username/password preferred when offered, then CONNECT; bytes after the request are kept',
    bytes: Buffer.concat([Buffer.from([5, 2, 0, 2, 1, 5]), Buffer.from('alice'), Buffer.from([6]), Buffer.from('secret'), domainRequest('x.onion', 5223), Buffer.from('<?xml')]),
    last: { type: 'request' },
    written: [5, 2, 1, 0],
    request: { host: 'x.onion', port: 5223, credentials: { username: 'alice', password: 'secret' } },
    rest: '<?xml',
  },
  {
    name: 'CONNECT to IPv4',
    bytes: Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0x14, 0x66]),
    last: { type: 'request' },
    written: [5, 0],
    request: { host: '127.0.0.1', port: 5222, addressType: 'ipv4' },
  },
  {
    name: 'CONNECT to IPv6',
    bytes: Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 4]), Buffer.from('00000000000000000000000000000001', 'hex'), Buffer.from([0x14, 0x66])]),
    last: { type: 'request' },
    written: [5, 0],
    request: { host: '::1', addressType: 'ipv6' },
  },
  {
    name: 'BIND is refused with 0x07',
    bytes: Buffer.concat([Buffer.from([5, 1, 0]), domainRequest('example.test', 5222, 2)]),
    last: { type: 'fail' },
    written: [5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0],
  },
  {
    name: 'UDP ASSOCIATE is refused with 0x07',
    bytes: Buffer.concat([Buffer.from([5, 1, 0]), domainRequest('example.test', 5222, 3)]),
    last: { type: 'fail' },
    written: [5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0],
  },
  {
    name: 'an unknown address type is refused with 0x08',
    bytes: Buffer.from([5, 1, 0, 5, 1, 0, 9, 0, 0]),
    last: { type: 'fail' },
    written: [5, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0],
  },
  {
    name: 'no acceptable method: 0xFF',
    bytes: Buffer.from([5, 1, 0x80]),
    last: { type: 'fail' },
    written: [5, 0xff],
  },
  {
    name: 'SOCKS4 is refused',
    bytes: Buffer.from([4, 1, 0, 80]),
    last: { type: 'fail' },
    written: [],
  },
];

for (const c of cases) {
  t.test(c.name, async (t) => {
    const whole = run([c.bytes]);
    t.match(whole.steps.at(-1), c.last);
    t.same([...whole.written], c.written, 'replies');
    if (c.request) t.match((whole.steps.at(-1) as { request: object }).request, c.request);
    if (c.rest !== undefined) t.equal((whole.steps.at(-1) as { rest: Buffer }).rest.toString(), c.rest);
    const handshake = new Socks5Handshake();
    const steps: HandshakeStep[] = [];
    for (const byte of c.bytes) {
      const step = handshake.feed(Buffer.from([byte]));
      steps.push(step);
      if (step.type !== 'need-more') break;
    }
    const bytewise = { steps, written: Buffer.concat(steps.flatMap((s) => (s.write ? [s.write] : []))) };
    const outcome = bytewise.steps.find((s) => s.type !== 'need-more') ?? bytewise.steps.at(-1);
    t.equal(outcome?.type, c.last.type, 'same outcome fed byte by byte');
    t.same([...bytewise.written], c.written, 'same replies fed byte by byte');
  });
}
