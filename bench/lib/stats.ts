/** Order statistics over samples; every function returns NaN for no samples. */

export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (sorted.length - 1) * q;
  const low = Math.floor(at);
  const high = Math.ceil(at);
  const a = sorted[low]!;
  const b = sorted[high]!;
  return a + (b - a) * (at - low);
}

export const median = (samples: readonly number[]): number => quantile(samples, 0.5);

export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly p25: number;
  readonly p75: number;
  readonly n: number;
}

export function summarize(samples: readonly number[]): Summary {
  return {
    median: median(samples),
    min: samples.length ? Math.min(...samples) : Number.NaN,
    max: samples.length ? Math.max(...samples) : Number.NaN,
    p25: quantile(samples, 0.25),
    p75: quantile(samples, 0.75),
    n: samples.length,
  };
}

/** Half the range of the per-repetition values, relative to their median: "±x %". */
export function spreadPercent(samples: readonly number[]): number {
  if (samples.length < 2) return Number.NaN;
  const m = median(samples);
  return m === 0 ? Number.NaN : ((Math.max(...samples) - Math.min(...samples)) / 2 / Math.abs(m)) * 100;
}

/** `items` rotated left by `by` places: interleaves configurations differently on each repetition. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  if (items.length === 0) return [];
  const k = ((by % items.length) + items.length) % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}
