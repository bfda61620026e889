/**
 * Shared setup for the control socket tests: the built daemon with --control in a private temp
 * folder, Tor played by the SOCKS5 fixture, an honest STARTTLS server behind it. Not a test
 * itself (tap reports it as "no tests found").
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';
import { ControlClient } from '../../src/control/control-client.js';
import type { EventMessage, ServerMessage } from '../../src/control/protocol.js';
import { CLI, ISOLATED_ENV, runCli as runBuiltCli, type CliResult } from '../cli/built-cli.js';
import { createTestCa, issueServerCert } from '../helpers/certs.js';
import { startDaemonProcess, type DaemonProcess } from '../helpers/daemon-process.js';
import { honestScript, startFakeXmppServer, type FakeXmppServer } from '../helpers/fake-xmpp.js';
import { startSocks5Fixture, type SocksFixture } from '../helpers/socks5-server.js';
import { connect, readToClose } from '../helpers/xmpp-wire.js';

export { CLI };

export const ONION = '6voaf7iamjpufgwoulypzwwecsm2nu7j5jpgadav2rfqixmpl4d65kid.onion';
/** Mapped to ONION by the test map. */
export const ONION_DOMAIN = 'example.test';
/** Not in the map: through "a Tor exit" to itself. */
export const CLEAR_DOMAIN = 'clear.test';

/** A 0700 temp folder (removed at teardown) and a socket path inside it. */
export function controlDir(t: Test): { dir: string; socket: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'xop-control-'));
  chmodSync(dir, 0o700);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, socket: path.join(dir, 'control.sock') };
}

/** The children never see the real map layers nor the caller's runtime folder. */
export const CHILD_ENV: NodeJS.ProcessEnv = { ...process.env, ...ISOLATED_ENV, XDG_RUNTIME_DIR: '', RUNTIME_DIRECTORY: '' };

export interface Setup {
  readonly daemon: DaemonProcess;
  readonly socket: string;
  readonly dir: string;
  readonly mapFile: string;
  readonly server: FakeXmppServer;
  readonly socks: SocksFixture;
  readonly caCert: string;
}

const ca = await createTestCa();
const leaf = await issueServerCert(ca, [ONION_DOMAIN, CLEAR_DOMAIN]);

export async function setup(t: Test, extraArgs: readonly string[] = []): Promise<Setup> {
  const { dir, socket } = controlDir(t);
  const server = await startFakeXmppServer(honestScript(leaf.keyPem, leaf.certPem));
  t.teardown(() => server.close());
  const socks = await startSocks5Fixture({ resolve: (host) => (host === ONION || host === CLEAR_DOMAIN ? server.port : undefined) });
  t.teardown(() => socks.close());
  const mapFile = path.join(dir, 'map.json');
  writeFileSync(mapFile, JSON.stringify({ [ONION_DOMAIN]: { onion: ONION } }));
  const daemon = await startDaemonProcess(['--tor', `127.0.0.1:${socks.port}`, '--map', mapFile, '--control', socket, ...extraArgs], CHILD_ENV);
  t.teardown(() => daemon.stop());
  return { daemon, socket, dir, mapFile, server, socks, caCert: ca.certPem };
}

export type CliRun = CliResult;

/** The built command line with the control tests' environment (no runtime folder of the machine's). */
export function runCli(args: readonly string[]): Promise<CliRun> {
  return runBuiltCli(args, CHILD_ENV);
}

/** A control client that keeps every message it gets. */
export async function watcher(t: Test, socket: string, domains = false): Promise<{ client: ControlClient; messages: ServerMessage[]; events: () => EventMessage[] }> {
  const client = await ControlClient.connect(socket);
  t.teardown(() => client.close());
  const messages: ServerMessage[] = [];
  client.on('message', (m) => messages.push(m));
  client.send({ type: 'subscribe', domains });
  await client.next('snapshot');
  return { client, messages, events: () => messages.filter((m): m is EventMessage => m.type === 'event') };
}

/** Resolves once `condition()` holds, looking every `everyMs`; rejects after `timeoutMs` with `what`. */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A connection refused at once for its DOCTYPE (restricted-xml): three events, no Tor. Resolves when closed. */
export async function refusedConnection(port: number): Promise<void> {
  const socket = await connect(port);
  const closed = readToClose(socket);
  socket.write('<!DOCTYPE x>');
  await closed;
}

/** Closes after `count` of `make()` ran, at most `parallel` at once. */
export async function inParallel(count: number, parallel: number, make: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < count) await make(next++);
  }));
}

export function rawUnixConnect(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ path: socketPath });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}
