// The socket units' listeners, passed the way systemd passes them (systemd-socket-activate:
// LISTEN_FDS, LISTEN_FDNAMES from FileDescriptorName=), are the daemon's two doors.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { CLI } from '../helpers/daemon-process.js';
import { freePorts } from '../helpers/ports.js';
import { exited, spawnTied, terminate } from '../helpers/prosody.js';
import { connect, readToClose } from '../helpers/xmpp-wire.js';

function fdName(unit: string): string {
  const text = readFileSync(fileURLToPath(new URL(`../../systemd/${unit}`, import.meta.url)), 'utf8');
  const name = /^FileDescriptorName=(.+)$/m.exec(text)?.[1];
  if (!name) throw new Error(`${unit} has no FileDescriptorName=`);
  return name;
}

t.test('socket-activated with the units\' names, the daemon serves both doors', async (t) => {
  const names = [fdName('xmpp-onion-proxy.socket'), fdName('xmpp-onion-proxy-socks.socket')];
  const [connectPort = 0, socksPort = 0, closedPort = 0] = await freePorts(3);
  // systemd-socket-activate listens, then starts the daemon at the first connection.
  const child = spawnTied('systemd-socket-activate', [
    '-l', `127.0.0.1:${connectPort}`, '-l', `127.0.0.1:${socksPort}`, `--fdname=${names.join(':')}`,
    '-E', 'XMPP_ONION_PROXY_SYSTEM_MAP=', '-E', 'XMPP_ONION_PROXY_USER_MAP=',
    process.execPath, CLI, '--tor', `127.0.0.1:${closedPort}`,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => terminate(child));
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const waitFor = async (text: string): Promise<void> => {
    const deadline = Date.now() + 20_000;
    while (!output.includes(text)) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`no "${text}"; output:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };
  await waitFor(`Listening on 127.0.0.1:${socksPort}`);

  // The connect-server door: a stream header without `to` is refused in the daemon's words.
  const client = await connect(connectPort);
  const answer = readToClose(client);
  client.write("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>");
  t.match((await answer).toString(), /<host-unknown [^>]*\/>.*did not say which server it wants/s, 'the connect-server door answers');
  await waitFor('"door":"connect-server"');
  t.match(output, new RegExp(`listening on 127\\.0\\.0\\.1:${connectPort} \\(connect-server door\\), 127\\.0\\.0\\.1:${socksPort} \\(socks door\\)`), 'both listeners taken by name');

  // The SOCKS door: a SOCKS5 greeting is answered "no authentication".
  const socks = await connect(socksPort);
  const reply = new Promise<Buffer>((resolve) => socks.once('data', resolve));
  socks.write(Buffer.from([5, 1, 0]));
  t.same([...(await reply)], [5, 0], 'the SOCKS door answers SOCKS5');
  socks.destroy();

  child.kill('SIGTERM');
  t.equal((await exited(child)).code, 0, 'stops cleanly on SIGTERM');
});
