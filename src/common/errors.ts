import type { UpstreamCode } from '../policy/refusals.js';

/** Base of the daemon's own errors: a stable `code`, and a message safe to log (no destination, no credentials). */
export class ProxyError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class UsageError extends ProxyError {
  constructor(message: string) {
    super('XOP_ERR_USAGE', message);
  }
}

/** The upstream could not be reached; `reason` is its refusal code, `words` say why (never where). */
export class UpstreamError extends ProxyError {
  constructor(readonly reason: UpstreamCode, readonly words: string) {
    super('XOP_ERR_UPSTREAM', words);
  }
}

/** A map file that cannot be used: every problem, each naming the domain. */
export class MapFileError extends ProxyError {
  constructor(readonly file: string, readonly problems: readonly string[]) {
    super('XOP_ERR_MAP_FILE', `${file}: ${problems.length === 1 ? problems[0] : `${problems.length} problems:\n  ${problems.join('\n  ')}`}`);
  }
}
