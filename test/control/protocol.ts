import t from 'tap';
import { formatBytes, formatDuration } from '../../src/control/format.js';
import { CONTROL_VERSION, eventMessage, parseRequest, reloadFailure } from '../../src/control/protocol.js';
import { ACTIVITY_VERSION, type ActivityEvent } from '../../src/proxy/activity.js';

t.test('the control protocol maps Activity events of version 1', async (t) => {
  // A new Activity version may carry new fields: eventMessage() picks fields by name, so review it then.
  t.equal(ACTIVITY_VERSION, 1, 'src/control/protocol.ts eventMessage() is written for ACTIVITY_VERSION 1');
  t.equal(CONTROL_VERSION, 1);
});

t.test('requests', async (t) => {
  const table: Array<[string, unknown]> = [
    ['{"type":"snapshot","version":1}', { type: 'snapshot', domains: false }],
    ['{"type":"snapshot","version":1,"domains":true}', { type: 'snapshot', domains: true }],
    ['{"type":"subscribe","version":1,"domains":false,"extra":1}', { type: 'subscribe', domains: false }],
    ['{"type":"unsubscribe","version":1}', { type: 'unsubscribe' }],
    ['{"type":"reload","version":1}', { type: 'reload' }],
    ['{"type":"reload"}', { problem: 'unsupported-version' }],
    ['{"type":"reload","version":"1"}', { problem: 'unsupported-version' }],
    ['{"type":"stop","version":1}', { problem: 'unknown-type' }],
    ['{"version":1}', { problem: 'unknown-type' }],
    ['null', { problem: 'bad-request' }],
    ['"snapshot"', { problem: 'bad-request' }],
    ['{', { problem: 'bad-request', message: 'not JSON' }],
  ];
  for (const [text, expected] of table) t.match(parseRequest(text), expected, text);
});

t.test('events: fields picked by name, the domain only when asked for', async (t) => {
  const routed = { type: 'routed', id: 3, route: 'onion', mode: 'starttls', domain: 'example.test', jid: 'alice@example.test' } as unknown as ActivityEvent;
  t.same(eventMessage(routed, 5, false), { type: 'event', version: 1, at: 5, event: 'routed', id: 3, route: 'onion', mode: 'starttls' });
  t.same(eventMessage(routed, 5, true), { type: 'event', version: 1, at: 5, event: 'routed', id: 3, route: 'onion', mode: 'starttls', domain: 'example.test' });
  const closed = { type: 'closed', id: 3, reason: 'done', fromClient: 10, fromServer: 20, ms: 30, stanza: '<message/>' } as unknown as ActivityEvent;
  t.same(eventMessage(closed, 5, true), { type: 'event', version: 1, at: 5, event: 'closed', id: 3, reason: 'done', fromClient: 10, fromServer: 20, ms: 30 }, 'a field added later does not leak');
  t.same(eventMessage({ type: 'accepted', id: 1, door: 'socks' }, 1, false), { type: 'event', version: 1, at: 1, event: 'accepted', id: 1, door: 'socks' });
  t.same(eventMessage({ type: 'tls-started', id: 1 }, 1, false), { type: 'event', version: 1, at: 1, event: 'tls-started', id: 1 });
  t.same(eventMessage({ type: 'refused', id: 1, reason: 'server-no-starttls' }, 1, false), { type: 'event', version: 1, at: 1, event: 'refused', id: 1, reason: 'server-no-starttls' });
});

t.test('a failed reload carries our code and message only', async (t) => {
  const error = Object.assign(new Error('/etc/x.json: a.test: bad onion'), { code: 'XOP_ERR_MAP_FILE', file: '/etc/x.json', secret: 'x' });
  t.same(reloadFailure(error, 2, 28), { ok: false, generation: 2, entries: 28, error: { code: 'XOP_ERR_MAP_FILE', message: '/etc/x.json: a.test: bad onion' } });
  t.same(reloadFailure('odd', 1, 1), { ok: false, generation: 1, entries: 1, error: { code: 'XOP_ERR_RELOAD', message: 'odd' } });
});

t.test('durations and sizes', async (t) => {
  t.same([0, 999, 1000, 59_999, 60_000, 3_599_000, 3_600_000, 86_400_000 + 3_600_000].map(formatDuration), ['0ms', '999ms', '1s', '59s', '1m00s', '59m59s', '1h00m', '1d01h']);
  t.same([0, 1023, 1024, 1536, 1048576, 5 * 1073741824].map(formatBytes), ['0 B', '1023 B', '1.0 KiB', '1.5 KiB', '1.0 MiB', '5.0 GiB']);
});
