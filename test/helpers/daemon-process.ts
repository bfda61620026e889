import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { exited, spawnTied, terminate } from './prosody.js';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface DaemonProcess {
  readonly child: ChildProcess;
  /** The connect-server door's port, read from the start-up line. */
  readonly port: number;
  /** The SOCKS door's port, when --socks was given. */
  readonly socksPort: number | undefined;
  /** JSON log lines so far (stdout is not a terminal, so the daemon logs JSON). */
  logs(): Array<Record<string, unknown>>;
  rawLogs(): string;
  stderr(): string;
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * The built daemon as a child process, listening on 127.0.0.1 port 0 unless `args` say
 * otherwise; the port is read from its start-up line, so no port is guessed. `command` runs
 * another build of it (an installed package, the one-file build) instead of dist/cli/main.js.
 */
export async function startDaemonProcess(args: readonly string[], env: NodeJS.ProcessEnv = {}, command: readonly string[] = [process.execPath, CLI]): Promise<DaemonProcess> {
  const listen = args.includes('--listen') ? [] : ['--listen', '127.0.0.1:0'];
  // No test daemon reads the machine's own /etc or ~ map files.
  const isolated = { ...process.env, XMPP_ONION_PROXY_SYSTEM_MAP: '', XMPP_ONION_PROXY_USER_MAP: '', XDG_RUNTIME_DIR: '', ...env };
  const child = spawnTied(command[0]!, [...command.slice(1), ...listen, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: isolated });
  const { logs, rawLogs, stderr, waitForLog } = watchDaemonOutput(child);
  const started = await waitForLog((line) => typeof line.msg === 'string' && line.msg.startsWith('listening on'));
  return {
    child,
    port: started.port as number,
    socksPort: started.socksPort as number | undefined,
    logs,
    rawLogs,
    stderr,
    waitForLog,
    stop: async () => {
      await terminate(child);
      return (await exited(child)).code;
    },
  };
}

export interface DaemonOutput {
  logs(): Array<Record<string, unknown>>;
  rawLogs(): string;
  stderr(): string;
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** The daemon's JSON log lines as they come (stdout is a pipe, so it logs JSON), and a bounded wait for one. */
export function watchDaemonOutput(child: ChildProcess, defaultTimeoutMs = 15_000): DaemonOutput {
  let raw = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  child.stdout?.on('data', (chunk: Buffer) => {
    raw += chunk.toString();
    for (const wake of [...waiters]) wake();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const logs = (): Array<Record<string, unknown>> =>
    raw.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
  const waitForLog = (match: (line: Record<string, unknown>) => boolean, timeoutMs = defaultTimeoutMs): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const line = logs().find(match);
        if (line) {
          done();
          resolve(line);
        } else if (child.exitCode !== null) {
          done();
          reject(new Error(`the daemon exited with ${child.exitCode}: ${stderr}${raw}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no such log line within ${timeoutMs} ms; log so far:\n${raw}\nstderr: ${stderr}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
        child.removeListener('exit', check);
      };
      waiters.add(check);
      child.on('exit', check);
      check();
    });
  return { logs, rawLogs: () => raw, stderr: () => stderr, waitForLog };
}
