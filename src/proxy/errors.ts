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

/** The upstream could not be reached; `reason` is a stable code, `words` say why for the user. */
export class UpstreamError extends ProxyError {
  constructor(readonly reason: string, readonly words: string) {
    super('XOP_ERR_UPSTREAM', words);
  }
}
