/**
 * Runs one of the Python client fixtures (test/fixtures/*.py, Debian's /usr/bin/python3 with the
 * Debian client library it imports) with a JSON job on stdin, and collects the JSON events it
 * prints. The environment is a clean one: no proxy variables, no inherited CA settings, a temp
 * HOME, GSettings in memory (GIO reads no desktop proxy settings).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand } from './run-command.js';

export interface PythonEvent {
  readonly event: string;
  readonly [key: string]: unknown;
}

export interface PythonClientResult {
  readonly code: number | null;
  readonly events: PythonEvent[];
  readonly stderr: string;
}

export async function runPythonClient(fixture: string, job: Record<string, unknown>, timeoutMs = 45_000): Promise<PythonClientResult> {
  const script = fileURLToPath(new URL(`../fixtures/${fixture}`, import.meta.url));
  const home = await mkdtemp(path.join(os.tmpdir(), 'xop-pyclient-'));
  try {
    const env = { PATH: '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8', GSETTINGS_BACKEND: 'memory', PYTHONDONTWRITEBYTECODE: '1' };
    const result = await runCommand('/usr/bin/python3', [script], { env, cwd: home, timeoutMs, input: JSON.stringify(job) });
    const events = result.stdout.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as PythonEvent);
    return { code: result.code, events, stderr: result.stderr };
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}
