/**
 * An independent count of what k-anonymity does to a seeded fleet, from the samples the
 * test sent (not from analytics): the generalization ladder of the README, written again
 * in TypeScript. Per hour and metric, each resource lands in the finest cell
 * region × zone × resource type × instance type × metric that k accounts share; else its
 * instance type becomes '*' (zone × type × metric pool); else its zone too (region × type
 * × metric pool); a cell still under k accounts is suppressed.
 *
 * Labels: the simulator's regions, zones and instance types all match the default label
 * pattern, and missing attributes read 'unknown', so labels are published as written; the
 * caller checks that precondition with `labelsPublishable`.
 */
import { DEFAULT_ANALYTICS_LABEL_PATTERN } from '../../schemas/config.js';

const HOUR_MS = 3_600_000;

export interface SentSample {
  account_id: string;
  resource_id: string;
  resource_type: string;
  region: string;
  metric: string;
  ts: string | number;
  interval_s: number;
  attributes?: Record<string, string>;
}

interface Row {
  hour: number;
  account: string;
  metric: string;
  region: string;
  zone: string;
  type: string;
  it: string;
  level: number;
  cell: string;
}

export interface LadderCount {
  resourceHours: number;
  /** Published with instance type or zone '*'. */
  generalized: number;
  suppressed: number;
  hours: number;
  /** Per hour and metric, the most suppressed resources. */
  peakSuppressed: number;
  /** Distinct accounts of the largest region × resource type × metric group in any hour. */
  largestCoarseGroup: number;
}

const LABEL = new RegExp(DEFAULT_ANALYTICS_LABEL_PATTERN);

/** Every region, zone and instance type the samples carry is published as written. */
export function labelsPublishable(samples: readonly SentSample[]): boolean {
  return samples.every((s) => [s.region, s.attributes?.zone, s.attributes?.instance_type].every((v) => v === undefined || LABEL.test(v)));
}

export function ladder(samples: readonly SentSample[], k: number, window?: { from: number; to: number }): LadderCount {
  // One row per account × resource × metric × hour (the billing row the rollup reads).
  const seen = new Map<string, Row>();
  for (const s of samples) {
    const ts = typeof s.ts === 'number' ? s.ts : Date.parse(s.ts);
    const hour = Math.floor((ts - 1) / HOUR_MS) * HOUR_MS; // a window (ts − interval, ts] belongs to the hour before ts
    if (window && (hour < window.from || hour >= window.to)) continue;
    const key = `${s.account_id}|${s.resource_id}|${s.metric}|${hour}`;
    if (seen.has(key)) continue;
    seen.set(key, {
      hour, account: s.account_id, metric: s.metric, region: s.region, type: s.resource_type,
      zone: s.attributes?.zone || 'unknown', it: s.attributes?.instance_type || 'unknown', level: 0, cell: '',
    });
  }
  const rows = [...seen.values()];
  const accountsBy = (items: readonly Row[], key: (r: Row) => string) => {
    const m = new Map<string, Set<string>>();
    for (const r of items) {
      const kk = key(r);
      (m.get(kk) ?? m.set(kk, new Set()).get(kk)!).add(r.account);
    }
    return m;
  };
  const fine = (r: Row) => `${r.hour}|${r.region}|${r.zone}|${r.type}|${r.it}|${r.metric}`;
  const zoneKey = (r: Row) => `${r.hour}|${r.region}|${r.zone}|${r.type}|${r.metric}`;
  const n0 = accountsBy(rows, fine);
  const rest = rows.filter((r) => n0.get(fine(r))!.size < k);
  const n1 = accountsBy(rest, zoneKey);
  for (const r of rows) {
    if (n0.get(fine(r))!.size >= k) {
      r.level = 0;
      r.cell = fine(r);
    } else if (n1.get(zoneKey(r))!.size >= k) {
      r.level = 1;
      r.cell = `${r.hour}|${r.region}|${r.zone}|${r.type}|*|${r.metric}`;
    } else {
      r.level = 2;
      r.cell = `${r.hour}|${r.region}|*|${r.type}|*|${r.metric}`;
    }
  }
  const cells = accountsBy(rows, (r) => r.cell);
  const suppressed = rows.filter((r) => cells.get(r.cell)!.size < k);
  const perHourMetric = new Map<string, number>();
  for (const r of suppressed) perHourMetric.set(`${r.hour}|${r.metric}`, (perHourMetric.get(`${r.hour}|${r.metric}`) ?? 0) + 1);
  const coarse = accountsBy(rows, (r) => `${r.hour}|${r.region}|${r.type}|${r.metric}`);
  return {
    resourceHours: rows.length,
    generalized: rows.filter((r) => r.level > 0 && cells.get(r.cell)!.size >= k).length,
    suppressed: suppressed.length,
    hours: new Set(rows.map((r) => r.hour)).size,
    peakSuppressed: Math.max(0, ...perHourMetric.values()),
    largestCoarseGroup: Math.max(0, ...[...coarse.values()].map((s) => s.size)),
  };
}
