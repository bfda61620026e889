/**
 * Child processes of the bench: spawned tied to it (setpriv --pdeathsig KILL when available),
 * optionally with a file-descriptor limit (prlimit), each stopped by its own pid at the end.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const live = new Set<ChildProcess>();
let hooked = false;

function which(command: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  const out = found.stdout?.trim();
  return found.status === 0 && out ? out : undefined;
}

const tools = new Map<string, string | undefined>();
export function tool(command: string): string | undefined {
  if (!tools.has(command)) tools.set(command, which(command));
  return tools.get(command);
}

export interface SpawnBenchOptions extends SpawnOptions {
  /** Soft and hard RLIMIT_NOFILE for the child (through prlimit); unset: inherited. */
  readonly nofile?: number;
}

/** Spawns `command`; the pid is the command's own (setpriv and prlimit exec it). */
export function spawnBench(command: string, args: readonly string[], options: SpawnBenchOptions = {}): ChildProcess {
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const child of live) child.kill('SIGKILL');
    });
  }
  const { nofile, ...spawnOptions } = options;
  let argv = [command, ...args];
  if (nofile !== undefined) {
    const prlimit = tool('prlimit');
    if (!prlimit) throw new Error('prlimit is needed to set a child\'s file-descriptor limit');
    argv = [prlimit, `--nofile=${nofile}:${nofile}`, '--', ...argv];
  }
  const setpriv = tool('setpriv');
  if (setpriv) argv = [setpriv, '--pdeathsig', 'KILL', '--', ...argv];
  const child = spawn(argv[0]!, argv.slice(1), spawnOptions);
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child));
  return child;
}

/** Resolves when the child has exited. */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const gone = exited(child);
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = await Promise.race([gone.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)))]);
  clearTimeout(timer);
  if (late) {
    child.kill('SIGKILL');
    await gone;
  }
}

export async function stopAllChildren(): Promise<void> {
  await Promise.all([...live].map((child) => stopChild(child)));
}

/** Resolves with the first stdout line `match` accepts; rejects when the child exits first or after `timeoutMs`. */
export function waitForLine(child: ChildProcess, match: (line: string) => boolean, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let pending = '';
    let stderr = '';
    const onData = (chunk: Buffer): void => {
      pending += chunk.toString('utf8');
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (match(line)) {
          done();
          resolve(line);
          return;
        }
      }
    };
    const onErr = (chunk: Buffer): void => {
      stderr = (stderr + chunk.toString('utf8')).slice(-2000);
    };
    const onExit = (): void => {
      done();
      reject(new Error(`the child exited (${child.exitCode ?? child.signalCode}) before it was ready: ${stderr}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`the child was not ready within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      child.stdout?.removeListener('data', onData);
      child.stderr?.removeListener('data', onErr);
      child.removeListener('exit', onExit);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onErr);
    child.once('exit', onExit);
  });
}

/** Polls until something accepts TCP connections on 127.0.0.1:port (bounded). */
export async function waitForPort(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the child exited (${child.exitCode ?? child.signalCode}) before listening on ${port}`);
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

const CHILDREN_DIR = fileURLToPath(new URL('../children/', import.meta.url));

/**
 * Transpiles bench/children/NAME.ts (Node built-ins only) to DIR/NAME.mjs, so the child runs on
 * plain Node, without the TypeScript loader in its memory.
 */
export async function transpileChild(name: string, dir: string): Promise<string> {
  const source = await readFile(path.join(CHILDREN_DIR, `${name}.ts`), 'utf8');
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    fileName: `${name}.ts`,
  });
  await mkdir(dir, { recursive: true });
  const out = path.join(dir, `${name}.mjs`);
  await writeFile(out, outputText);
  return out;
}
