/**
 * The billing totals a simulated stream must produce, computed exactly (BigInt, no
 * floating point) from the batches as they stream past: the oracle for the exactly-once
 * tests (DESIGN.md invariant 1). Injected invalid items and duplicates are skipped by the
 * indexes each batch carries, so no set of seen keys has to be held in memory.
 *
 * Base totals follow the metric catalogue (schemas/metrics.ts): decimal kinds (cpu, gpu)
 * in micro-units, gauges (memory, storage) as value × interval_s, the rest as sent.
 */
import { GAUGE_METRICS, type Metric, type SampleInput } from '../schemas/sample.js';
import { METRIC_KINDS } from '../schemas/metrics.js';
import { usageHourOf } from '../lib/time.js';
import type { SampleBatch } from './samples.js';

export interface ExpectedRow {
  account_id: string;
  metric: Metric;
  /** Start of the usage hour (epoch seconds), when built with `byHour`. */
  hour?: number;
  /** Exact decimal string, e.g. `"3600.25"` vCPU-seconds or `"8589934592000"` byte-seconds. */
  base_total: string;
  samples: number;
}

export class ExpectedTotals {
  /** Decimal kinds in micro-units (10^places); everything else in its base unit. */
  private readonly sums = new Map<string, { row: Omit<ExpectedRow, 'base_total'>; total: bigint }>();
  /** Distinct samples seen: what billing should have stored. */
  distinct = 0;

  constructor(private readonly opts: { byHour?: boolean } = {}) {}

  add(batch: SampleBatch): void {
    const skip = new Set([...batch.invalidIndexes, ...batch.duplicateIndexes]);
    batch.items.forEach((item, i) => {
      if (!skip.has(i)) this.addSample(item as SampleInput);
    });
  }

  addSample(s: SampleInput): void {
    const tsMs = typeof s.ts === 'number' ? s.ts : Date.parse(s.ts);
    const hour = this.opts.byHour ? usageHourOf(tsMs) : undefined;
    const key = `${s.account_id}\u0000${s.metric}\u0000${hour ?? ''}`;
    let entry = this.sums.get(key);
    if (!entry) {
      entry = { row: { account_id: s.account_id, metric: s.metric, ...(hour !== undefined ? { hour } : {}), samples: 0 }, total: 0n };
      this.sums.set(key, entry);
    }
    entry.total += baseUnits(s);
    entry.row.samples++;
    this.distinct++;
  }

  /** One row per account × metric (× hour), sorted for stable comparison. */
  rows(): ExpectedRow[] {
    return [...this.sums.values()]
      .map(({ row, total }) => ({ ...row, base_total: format(row.metric, total) }))
      .sort((a, b) =>
        a.account_id < b.account_id ? -1 : a.account_id > b.account_id ? 1
        : a.metric < b.metric ? -1 : a.metric > b.metric ? 1
        : (a.hour ?? 0) - (b.hour ?? 0));
  }

  /** Total for one account and metric over everything seen (all hours). */
  get(accountId: string, metric: Metric): string {
    let total = 0n;
    for (const { row, total: t } of this.sums.values()) {
      if (row.account_id === accountId && row.metric === metric) total += t;
    }
    return format(metric, total);
  }
}

/** Decimal places a kind's value is tracked in here (0 for whole-number kinds). */
function places(metric: Metric): number {
  const w = METRIC_KINDS[metric].wire;
  return w.kind === 'decimal' ? w.places : 0;
}

function baseUnits(s: SampleInput): bigint {
  const p = places(s.metric);
  const v = p > 0 ? BigInt(s.value.toFixed(p).replace('.', '')) : BigInt(s.value);
  return GAUGE_METRICS.has(s.metric) ? v * BigInt(s.interval_s) : v;
}

/** Scaled units back to a trimmed decimal (`1.5`, `2`), the form parseSample produces. */
function format(metric: Metric, total: bigint): string {
  const p = places(metric);
  if (p === 0) return total.toString();
  const scale = 10n ** BigInt(p);
  const whole = total / scale;
  const frac = (total % scale).toString().padStart(p, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : `${whole}`;
}
