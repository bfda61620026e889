import pino, { type Logger, type LevelWithSilent } from 'pino';

/** Keeps only what is ours to print: never a third-party error's fields (they can hold destinations or credentials). */
function errSerializer(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  const code = (error as { code?: unknown }).code;
  return { type: error.name, ...(typeof code === 'string' ? { code } : {}), message: error.message };
}

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** JSON lines, or human-readable lines when stdout is a terminal (pino-pretty, loaded only then). */
export async function createLogger(level: LevelWithSilent, pretty = process.stdout.isTTY === true): Promise<Logger> {
  const options = { level, base: null, serializers: { err: errSerializer } };
  if (!pretty) return pino(options, pino.destination({ fd: 1, sync: true }));
  const { default: prettyStream } = await import('pino-pretty');
  return pino(options, prettyStream({ colorize: true, sync: true, translateTime: 'HH:MM:ss', ignore: 'pid,hostname' }));
}
