/**
 * A terminal program run headless in tmux, for tests that drive real clients (finch, profanity).
 * The tmux server runs in the foreground (`-D`) as a child tied to this process (killed with
 * it), on a socket in `workDir`; the program goes when its session or the server goes. Screens
 * are read with `capture-pane`; waits poll the screen, bounded by a deadline.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { exited, spawnTied, terminate } from './prosody.js';
import { runCommand } from './run-command.js';

export interface TmuxOptions {
  /** A private folder for the tmux socket. */
  readonly workDir: string;
  /** The program and its arguments. */
  readonly command: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** What the program is called in error messages. */
  readonly name: string;
  readonly columns?: number;
  readonly rows?: number;
}

export interface TmuxApp {
  /** The screen as text; with `colors`, with its escape sequences. */
  screen(colors?: boolean): Promise<string>;
  /** Polls the screen until it matches; rejects with the last screen after `timeoutMs`. */
  waitForScreen(match: RegExp | string, timeoutMs?: number): Promise<string>;
  /** tmux key names (`Enter`, `M-n`, `Tab`) or text. */
  sendKeys(...keys: string[]): Promise<void>;
  /** Ends the program and the tmux server. Idempotent. */
  stop(): Promise<void>;
}

const SESSION = 'app';

export async function startInTmux(options: TmuxOptions): Promise<TmuxApp> {
  const socket = path.join(options.workDir, 'tmux.sock');
  const env = options.env;
  const server = spawnTied('tmux', ['-S', socket, '-f', '/dev/null', '-D'], { stdio: 'ignore', env });
  const tmux = (...args: string[]): ReturnType<typeof runCommand> => runCommand('tmux', ['-S', socket, ...args], { env, timeoutMs: 10_000 });
  const deadline = Date.now() + 10_000;
  while (!existsSync(socket)) {
    if (server.exitCode !== null || Date.now() > deadline) throw new Error('the tmux server did not start');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const started = await tmux('new-session', '-d', '-s', SESSION, '-x', String(options.columns ?? 200), '-y', String(options.rows ?? 50), ...options.command);
  if (started.code !== 0) {
    await terminate(server);
    throw new Error(`tmux new-session failed: ${started.stderr}`);
  }
  const capture = async (colors = false): Promise<string> => {
    const result = await tmux('capture-pane', '-p', ...(colors ? ['-e'] : []), '-t', SESSION);
    return result.code === 0 ? result.stdout : `(no screen: ${result.stderr.trim()})`;
  };
  let stopping: Promise<void> | undefined;
  return {
    screen: capture,
    waitForScreen: async (match, timeoutMs = 20_000) => {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const screen = await capture();
        if (typeof match === 'string' ? screen.includes(match) : match.test(screen)) return screen;
        if (Date.now() > until) throw new Error(`${options.name}: no ${String(match)} within ${timeoutMs} ms; the screen:\n${screen}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    sendKeys: async (...keys) => {
      const sent = await tmux('send-keys', '-t', SESSION, ...keys);
      if (sent.code !== 0) throw new Error(`tmux send-keys: ${sent.stderr}`);
    },
    stop: () => {
      stopping ??= (async () => {
        // The session first, while the server lives to reap the program (an orphan would stay
        // a zombie where PID 1 does not reap), then the server.
        const pid = Number((await tmux('display-message', '-p', '-t', SESSION, '#{pane_pid}')).stdout.trim());
        await tmux('kill-session', '-t', SESSION);
        const until = Date.now() + 5000;
        while (pid > 0 && existsSync(`/proc/${pid}`) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
        await tmux('kill-server');
        await terminate(server);
        await exited(server);
      })();
      return stopping;
    },
  };
}
