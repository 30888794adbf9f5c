/**
 * Summaries the benchmark reports: percentiles within one round, and median with spread
 * across rounds (absolute figures on a shared 2-core machine are noisy; the spread says how
 * much to trust a median).
 */

/** Linear-interpolated percentile of already sorted values (p in 0…100). */
export function percentileSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = sorted[lo] as number;
  const b = sorted[hi] as number;
  return a + (b - a) * (rank - lo);
}

export function percentile(values: readonly number[], p: number): number {
  return percentileSorted([...values].sort((x, y) => x - y), p);
}

export interface Percentiles {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((x, y) => x - y);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    n: sorted.length,
    p50: percentileSorted(sorted, 50),
    p90: percentileSorted(sorted, 90),
    p99: percentileSorted(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
  };
}

/** One figure over several rounds: the median, and how far the rounds spread around it. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** (max − min) / median: 0.1 means the rounds spread over 10 % of the median. */
  relSpread: number;
  rounds: number[];
}

export function spread(values: readonly number[]): Spread {
  const finite = values.filter((v) => Number.isFinite(v));
  const median = percentile(finite, 50);
  const min = finite.length ? Math.min(...finite) : Number.NaN;
  const max = finite.length ? Math.max(...finite) : Number.NaN;
  return { median, min, max, relSpread: median ? (max - min) / median : Number.NaN, rounds: [...values] };
}

/** A short human form: "97,400 (±6 %)". */
export function fmtSpread(s: Spread, digits = 0, unit = ''): string {
  if (!Number.isFinite(s.median)) return 'n/a';
  const pct = Number.isFinite(s.relSpread) && s.rounds.length > 1 ? ` (spread ${Math.round(s.relSpread * 100)} %)` : '';
  return `${fmt(s.median, digits)}${unit}${pct}`;
}

export function fmt(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return 'n/a';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
