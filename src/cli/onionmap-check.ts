import { normalizeDomain } from '../onionmap/domain.js';
import { decideRoute, type Route } from '../policy/routing.js';
import { parseEndpoint } from '../common/endpoint.js';
import { UsageError } from '../common/errors.js';
import { EXIT } from './exit-codes.js';
import { probeXmpp, type ProbeResult } from './onionmap-probe.js';
import { formatTable, loadCliMap } from './onionmap-shared.js';

export interface CheckOptions {
  readonly tor: string;
  readonly timeout: string;
  readonly parallel: string;
  readonly map?: string;
  readonly json?: boolean;
}

type Target = { readonly domain: string; readonly route: Route } | { readonly domain: string; readonly refused: string };
type CheckResult = { readonly domain: string; readonly route?: Route } & (ProbeResult | { readonly kind: 'refused'; readonly words: string });

export async function checkCommand(domains: readonly string[], options: CheckOptions): Promise<number> {
  const tor = parseEndpoint(options.tor, '--tor', { unix: true });
  const timeoutMs = 1000 * whole(options.timeout, '--timeout', 1, 600);
  const parallel = whole(options.parallel, '--parallel', 1, 64);
  const { map } = loadCliMap(options.map);
  const targets = chooseTargets(domains, map);
  const progress = new Progress(targets.length, process.stderr.isTTY === true && options.json !== true);
  const results: CheckResult[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < targets.length) {
      const target = targets[next++] as Target;
      const result: CheckResult = 'refused' in target
        ? { domain: target.domain, kind: 'refused', words: target.refused }
        : { domain: target.domain, route: target.route, ...(await probeXmpp({ tor, route: target.route, domain: target.domain, timeoutMs })) };
      results.push(result);
      progress.done(result.kind === 'alive');
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, targets.length) }, worker));
  progress.clear();
  const ordered = targets.map((t) => results.find((r) => r.domain === t.domain) as CheckResult);
  if (options.json) process.stdout.write(`${JSON.stringify(ordered, null, 2)}\n`);
  else process.stdout.write(formatResults(ordered, domains.length === 0 ? map.size - targets.length : 0));
  return ordered.every((r) => r.kind === 'alive') ? EXIT.ok : EXIT.failure;
}

/** Named domains are checked even when unmapped (through a Tor exit); without names, every routable entry. */
function chooseTargets(domains: readonly string[], map: ReturnType<typeof loadCliMap>['map']): Target[] {
  const names = domains.length > 0 ? domains.map(normalized) : map.entries().map((e) => e.domain);
  const targets: Target[] = [];
  for (const domain of new Set(names)) {
    const decision = decideRoute(map, domain, { onionOnly: false });
    if (decision.ok) targets.push({ domain, route: decision.route });
    else if (domains.length > 0) targets.push({ domain, refused: decision.refusal.text });
  }
  return targets;
}

function normalized(raw: string): string {
  const result = normalizeDomain(raw);
  if (!result.ok) throw new UsageError(`"${raw}" is not a usable XMPP domain: ${result.problem}`);
  return result.domain;
}

function formatResults(results: readonly CheckResult[], notChecked: number): string {
  const rows = results.map((r) => [r.kind, r.domain, r.route ? `${r.route.host}:${r.route.port}` : '-', words(r)]);
  const count = (kind: string): number => results.filter((r) => r.kind === kind).length;
  const summary = [`${results.length} checked: ${count('alive')} alive, ${count('no-starttls')} no-starttls, ${count('dead')} dead`];
  if (count('refused') > 0) summary.push(`${count('refused')} refused by the map`);
  if (notChecked > 0) summary.push(`${notChecked} retired entries not checked`);
  return (rows.length > 0 ? formatTable(rows) : '') + `${summary.join('; ')}\n`;
}

function words(result: CheckResult): string {
  const time = 'ms' in result ? ` (${(result.ms / 1000).toFixed(1)} s)` : '';
  switch (result.kind) {
    case 'alive':
      return `speaks XMPP and offers STARTTLS${result.required ? ' (required)' : ' (not required, the daemon requires it)'}${time}`;
    case 'no-starttls':
    case 'refused':
      return result.words + time;
    case 'dead':
      return `${result.words}${time}`;
  }
}

/** One line on the terminal, rewritten in place; nothing at all when standard error is not a terminal. */
class Progress {
  #done = 0;
  #alive = 0;
  constructor(readonly total: number, readonly enabled: boolean) {
    this.#draw();
  }

  done(alive: boolean): void {
    this.#done++;
    if (alive) this.#alive++;
    this.#draw();
  }

  clear(): void {
    if (this.enabled) process.stderr.write('\r\x1b[K');
  }

  #draw(): void {
    if (this.enabled) process.stderr.write(`\r\x1b[Kchecked ${this.#done} of ${this.total}, ${this.#alive} alive…`);
  }
}

function whole(text: string, flag: string, min: number, max: number): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag}: expected a whole number from ${min} to ${max}, got "${text}"`);
  return n;
}
