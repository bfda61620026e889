/** 0 on a clean stop, 1 on failure, 2 on bad usage (flags, config or map files). */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;
