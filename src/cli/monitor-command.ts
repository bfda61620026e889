import type { ControlClient } from '../control/control-client.js';
import { closedWords } from '../control/control-client.js';
import { eventLine, snapshotLine } from '../control/format.js';
import { MonitorModel } from '../control/monitor-view.js';
import type { ServerMessage } from '../control/protocol.js';
import { connectFromFlags, controlProgram, runControlStep, type ControlFlags } from './control-shared.js';
import { EXIT } from './exit-codes.js';

interface MonitorFlags extends ControlFlags {
  json?: boolean;
  domains?: boolean;
}

/** A fresh snapshot this often corrects anything events missed (and Tor's state). */
const REFRESH_MS = 2000;
const REDRAW_MS = 1000;

const ALT_SCREEN_ON = '\x1b[?1049h\x1b[?25l';
const ALT_SCREEN_OFF = '\x1b[?25h\x1b[?1049l';

/** `xmpp-onion-proxy monitor`: a live view on a terminal, one line per event otherwise. */
export async function runMonitor(args: readonly string[]): Promise<void> {
  const program = controlProgram('monitor', 'Watch the running daemon: open connections, counters and recent refusals, updated live. q or Ctrl-C quits. When standard output is not a terminal, one line per event.')
    .option('--json', 'one JSON message per line (snapshots and events), terminal or not')
    .option('--domains', 'show the domain of each connection (left out by default)')
    .addHelpText('after', '\nExit codes: 0 quit with q or Ctrl-C, 1 the daemon could not be reached or went away, 2 usage.')
    .action((flags: MonitorFlags) => runControlStep(async () => {
      const client = await connectFromFlags(flags);
      const live = process.stdout.isTTY === true && flags.json !== true;
      return live ? liveView(client, flags.domains === true) : lineView(client, flags.domains === true, flags.json === true);
    }));
  await program.parseAsync([...args], { from: 'user' });
}

interface Stoppable {
  /** The exit code: 0 when the user stops it, 1 when the connection ends by itself. */
  readonly done: Promise<number>;
  readonly quit: () => void;
}

function stoppable(client: ControlClient, cleanup: () => void): Stoppable {
  let quit = (): void => {};
  const done = new Promise<number>((resolve) => {
    let finished = false;
    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      process.removeListener('SIGINT', quit);
      process.removeListener('SIGTERM', quit);
      cleanup();
      resolve(code);
    };
    quit = (): void => {
      finish(EXIT.ok);
      client.close();
    };
    process.on('SIGINT', quit);
    process.on('SIGTERM', quit);
    client.once('close', (info) => {
      if (finished) return;
      finish(EXIT.failure);
      process.stderr.write(`xmpp-onion-proxy: ${closedWords(info)}\n`);
    });
  });
  return { done, quit };
}

function lineView(client: ControlClient, domains: boolean, json: boolean): Promise<number> {
  const print = (message: ServerMessage): void => {
    const line = json ? JSON.stringify(message) : message.type === 'event' ? eventLine(message) : message.type === 'snapshot' ? snapshotLine(message) : undefined;
    if (line !== undefined) process.stdout.write(`${line}\n`);
  };
  const stop = stoppable(client, () => {
    client.removeListener('message', print);
    process.stdout.removeListener('error', stop.quit);
  });
  // The reader went away (e.g. `| head`): stop quietly.
  process.stdout.on('error', stop.quit);
  client.on('message', print);
  client.send({ type: 'subscribe', domains });
  return stop.done;
}

function liveView(client: ControlClient, domains: boolean): Promise<number> {
  const out = process.stdout;
  const stdin = process.stdin;
  const model = new MonitorModel();
  let pending: NodeJS.Timeout | undefined;
  const draw = (): void => {
    pending = undefined;
    const dropped = model.snapshot?.you.dropped ?? 0;
    const footer = `q or Ctrl-C: quit · ${client.path}${dropped > 0 ? ` · ${dropped} events skipped while this view was behind` : ''}`;
    const lines = model.render(out.columns || 80, out.rows || 24, Date.now(), footer);
    out.write(`\x1b[H${lines.map((line) => `${line}\x1b[K`).join('\r\n')}\x1b[J`);
  };
  // Bursts of events are drawn once.
  const soon = (): void => {
    pending ??= setTimeout(draw, 50);
  };
  const onMessage = (message: ServerMessage): void => {
    model.apply(message);
    soon();
  };
  const raw = stdin.isTTY === true;
  const timers: NodeJS.Timeout[] = [];
  const stop = stoppable(client, () => {
    for (const timer of timers) clearInterval(timer);
    clearTimeout(pending);
    out.removeListener('resize', draw);
    client.removeListener('message', onMessage);
    if (raw) {
      stdin.removeListener('data', onKey);
      stdin.setRawMode(false);
      stdin.pause();
    }
    out.write(ALT_SCREEN_OFF);
  });
  const onKey = (key: Buffer): void => {
    // q, Q, Ctrl-C (raw mode delivers it as a byte, not SIGINT), Ctrl-D.
    if (key.includes(0x71) || key.includes(0x51) || key.includes(0x03) || key.includes(0x04)) stop.quit();
  };
  out.write(ALT_SCREEN_ON);
  out.on('resize', draw);
  client.on('message', onMessage);
  if (raw) {
    stdin.setRawMode(true);
    stdin.on('data', onKey);
    stdin.resume();
  }
  timers.push(setInterval(draw, REDRAW_MS), setInterval(() => client.send({ type: 'snapshot', domains }), REFRESH_MS));
  client.send({ type: 'subscribe', domains });
  draw();
  return stop.done;
}
