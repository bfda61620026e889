import pino, { type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

/** Keeps only what is ours to print: never a third-party error's fields (they can hold destinations or credentials). */
function errSerializer(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  const code = (error as { code?: unknown }).code;
  return { type: error.name, ...(typeof code === 'string' ? { code } : {}), message: error.message };
}

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LogOutput {
  /** Human-readable lines (pino-pretty, loaded only then); JSON lines otherwise. Default: stdout is a terminal. */
  readonly pretty?: boolean;
  /** Where JSON lines go (standard output by default; tests pass a memory sink). */
  readonly destination?: DestinationStream;
}

/** The daemon's one logger: the same options and serializers wherever it writes. */
export async function createLogger(level: LevelWithSilent, output: LogOutput = {}): Promise<Logger> {
  const options = { level, base: null, serializers: { err: errSerializer } };
  const pretty = output.pretty ?? (output.destination === undefined && process.stdout.isTTY === true);
  if (!pretty) return pino(options, output.destination ?? pino.destination({ fd: 1, sync: true }));
  const { default: prettyStream } = await import('pino-pretty');
  return pino(options, prettyStream({ colorize: true, sync: true, translateTime: 'HH:MM:ss', ignore: 'pid,hostname' }));
}
