/**
 * Helpers for tests that run the built command line (`node dist/cli/main.js`) as a child process.
 * Run `npm run build` first. Not a test itself (tap reports it as "no tests found").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, statSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');

/** Keeps every child away from the real /etc and ~ maps. */
export const ISOLATED_ENV: NodeJS.ProcessEnv = { XMPP_ONION_PROXY_SYSTEM_MAP: '', XMPP_ONION_PROXY_USER_MAP: '', XDG_RUNTIME_DIR: '' };

/** Fails the test with a clear instruction when dist/ is missing or older than src/. */
export function requireBuild(t: Test): boolean {
  const built = statSync(CLI, { throwIfNoEntry: false });
  if (!built) {
    t.fail(`${CLI} does not exist: run \`npm run build\` before these tests`);
    return false;
  }
  const newest = newestSource(path.join(ROOT, 'src'));
  if (newest && newest.mtimeMs > built.mtimeMs) {
    t.fail(`dist/ is older than ${path.relative(ROOT, newest.file)}: run \`npm run build\` before these tests`);
    return false;
  }
  return true;
}

function newestSource(dir: string): { file: string; mtimeMs: number } | undefined {
  let newest: { file: string; mtimeMs: number } | undefined;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    const found = entry.isDirectory() ? newestSource(file) : entry.name.endsWith('.ts') ? { file, mtimeMs: statSync(file).mtimeMs } : undefined;
    if (found && (!newest || found.mtimeMs > newest.mtimeMs)) newest = found;
  }
  return newest;
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...ISOLATED_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export function tempDir(t: Test): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'xop-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface DaemonProcess {
  readonly child: ChildProcess;
  /** Every JSON log line so far. */
  readonly lines: Array<Record<string, unknown>>;
  readonly raw: () => string;
  /** Resolves with the first log line (already seen or still to come) after `from` that matches. */
  waitFor(match: (line: Record<string, unknown>) => boolean, from?: number): Promise<Record<string, unknown>>;
  readonly exited: Promise<number | null>;
}

/** The daemon binary with JSON logs (stdout is a pipe, not a TTY); killed at teardown if still running. */
export function startDaemonProcess(t: Test, args: readonly string[], env: NodeJS.ProcessEnv = {}): DaemonProcess {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...ISOLATED_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<Record<string, unknown>> = [];
  let raw = '';
  let partial = '';
  const waiters: Array<{ match: (line: Record<string, unknown>) => boolean; from: number; resolve: (l: Record<string, unknown>) => void }> = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stderr?.on('data', (chunk: Buffer) => (raw += chunk.toString()));
  child.stdout?.on('data', (chunk: Buffer) => {
    raw += chunk.toString();
    partial += chunk.toString();
    const complete = partial.split('\n');
    partial = complete.pop() ?? '';
    for (const text of complete) {
      if (text.trim() === '') continue;
      lines.push(JSON.parse(text) as Record<string, unknown>);
      for (const waiter of [...waiters]) {
        const found = lines.slice(waiter.from).find(waiter.match);
        if (found) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(found);
        }
      }
    }
  });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    lines,
    raw: () => raw,
    exited,
    waitFor: (match, from = 0) => {
      const found = lines.slice(from).find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        waiters.push({ match, from, resolve });
        void exited.then((code) => reject(new Error(`the daemon exited (${code}) before the expected log line; output:\n${raw}`)));
      });
    },
  };
}
