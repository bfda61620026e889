import type { z } from 'zod';

/**
 * A schema library's findings as lines a user can act on: the key, what was expected, what was
 * found. `describe` may word a key's problem itself (the onion map keeps its own words).
 */
export function schemaProblems(
  error: z.ZodError,
  data: unknown,
  describe: (issue: z.core.$ZodIssue, key: string, found: string) => string | undefined = () => undefined,
): string[] {
  const lines: string[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = [...issue.path, key].map(String);
        lines.push(describe(issue, path.join('.'), 'unknown') ?? `"${path.join('.')}": unknown option`);
      }
      continue;
    }
    const key = issue.path.map(String).join('.');
    const found = foundAt(data, issue.path);
    lines.push(describe(issue, key, found) ?? `"${key}": ${expected(issue)}, got ${found}`);
  }
  return lines;
}

function expected(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected === 'int' ? 'a whole number' : issue.expected}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      return `expected at least ${String(issue.minimum)}`;
    case 'too_big':
      return `expected at most ${String(issue.maximum)}`;
    case 'invalid_union':
      return issue.message;
    default:
      return issue.message;
  }
}

function foundAt(data: unknown, path: readonly PropertyKey[]): string {
  let value = data;
  for (const key of path) value = typeof value === 'object' && value !== null ? (value as Record<PropertyKey, unknown>)[key] : undefined;
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  const shown = JSON.stringify(value);
  return `${Array.isArray(value) ? 'an array' : typeof value} ${shown.length > 60 ? `${shown.slice(0, 57)}...` : shown}`;
}
