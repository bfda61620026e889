/** One line of a checklist: ✓, ✗ with the fix, ! (a warning that stops nothing) or · (nothing to do). */
export interface CheckLine {
  readonly status: 'ok' | 'fail' | 'warn' | 'skip';
  readonly text: string;
  readonly fix?: string;
}

const MARKS: Record<CheckLine['status'], string> = { ok: '✓', fail: '✗', warn: '!', skip: '·' };

export function formatCheckLines(lines: readonly CheckLine[]): string {
  return lines.map((line) => `${MARKS[line.status]} ${line.text}\n${line.fix ? `    fix: ${line.fix}\n` : ''}`).join('');
}

export function anyFailed(lines: readonly CheckLine[]): boolean {
  return lines.some((line) => line.status === 'fail');
}
