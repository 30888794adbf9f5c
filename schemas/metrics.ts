/**
 * The catalogue of metric kinds: every fact about a kind of usage lives here, once, and
 * everything else derives from it: the wire rule (schemas/sample.ts), billed quantities
 * (queries/units.ts), base totals in the rollup SQL (workers/rollup-sql.ts,
 * rollup-fold-sql.ts), the Enum8 of the billing tables (checked against the live schema
 * after migrating, schemas/migrate.ts), natural units in the capacity and dataset `.sql`
 * files (filled in at load, queries/capacity/sql-file.ts), the simulator (sim/) and the
 * README's units table. docs/adding-a-metric-kind.md says how to add a kind and what
 * fails when a step is missed.
 *
 * It is a contract, so it lives in schemas/ (the bottom floor): ingest validation uses it.
 * The SQL fragments below are built from these trusted constants, never from user input.
 */

/** How a sample's `value` must be written on the wire. */
export type WireRule =
  /** A decimal with at most `places` decimals, ≤ `max` (exactly representable: ≤ 15 significant digits). */
  | { kind: 'decimal'; places: number; max: number; unitPlural: string }
  /** A whole number ≤ `max` (Number.MAX_SAFE_INTEGER: JSON numbers are float64). */
  | { kind: 'whole'; max: number; unitPlural: string };

export interface MetricKindSpec {
  /** The wire name, also the ClickHouse Enum8 label. */
  name: string;
  /** The Enum8 value in the billing tables: fixed forever once used (stored data holds it). */
  code: number;
  /** What `value` means, in words (README, docs). */
  meaning: string;
  wire: WireRule;
  /**
   * gauge: `value` is a level held over the window, billed per second held (value × interval_s);
   * counter: `value` is already the amount used in the window.
   */
  aggregation: 'gauge' | 'counter';
  /** Unit of a base total (what usage_hourly.base_total and analytics `total` hold). */
  baseUnit: string;
  /** Unit of a billed quantity, and base units per billed unit (exact decimal string). */
  billingUnit: string;
  divisor: string;
  /** Also billed per month (quantity / HOURS_PER_MONTH), e.g. GiB-months of storage. */
  monthly?: { field: 'quantity_gib_month' };
  /**
   * Analytics' natural unit: an hourly base total ÷ `perHour` is the average level over the
   * hour in this unit (busy vCPUs, GiB held, Mbit/s). The capacity queries and datasets show it.
   */
  natural: { unit: string; perHour: string; description: string };
}

const GIB = 1024 ** 3;
const GIB_HOUR = String(GIB * 3600);
const MAX_DECIMAL_6 = 999_999_999.999999;

/** In Enum8 order. A kind is added at the end with the next free code (never reuse one). */
const KINDS = [
  {
    name: 'cpu',
    code: 1,
    meaning: 'vCPU-seconds used in the window',
    wire: { kind: 'decimal', places: 6, max: MAX_DECIMAL_6, unitPlural: 'vCPU-seconds' },
    aggregation: 'counter',
    baseUnit: 'vCPU-second',
    billingUnit: 'vCPU-hour',
    divisor: '3600',
    natural: { unit: 'vCPU', perHour: '3600', description: 'busy vCPUs' },
  },
  {
    name: 'memory',
    code: 2,
    meaning: 'bytes allocated',
    wire: { kind: 'whole', max: Number.MAX_SAFE_INTEGER, unitPlural: 'bytes' },
    aggregation: 'gauge',
    baseUnit: 'byte-second',
    billingUnit: 'GiB-hour',
    divisor: GIB_HOUR,
    natural: { unit: 'GiB', perHour: GIB_HOUR, description: 'GiB allocated or provisioned' },
  },
  {
    name: 'storage',
    code: 3,
    meaning: 'bytes provisioned',
    wire: { kind: 'whole', max: Number.MAX_SAFE_INTEGER, unitPlural: 'bytes' },
    aggregation: 'gauge',
    baseUnit: 'byte-second',
    billingUnit: 'GiB-hour',
    divisor: GIB_HOUR,
    monthly: { field: 'quantity_gib_month' },
    natural: { unit: 'GiB', perHour: GIB_HOUR, description: 'GiB allocated or provisioned' },
  },
  {
    name: 'bandwidth_in',
    code: 4,
    meaning: 'bytes received in the window',
    wire: { kind: 'whole', max: Number.MAX_SAFE_INTEGER, unitPlural: 'bytes' },
    aggregation: 'counter',
    baseUnit: 'byte',
    billingUnit: 'GB',
    divisor: '1000000000',
    // bytes per hour × 8 bit ÷ 3600 s ÷ 10^6 = Mbit/s
    natural: { unit: 'Mbit/s', perHour: '450000000', description: 'average Mbit/s' },
  },
  {
    name: 'bandwidth_out',
    code: 5,
    meaning: 'bytes sent in the window',
    wire: { kind: 'whole', max: Number.MAX_SAFE_INTEGER, unitPlural: 'bytes' },
    aggregation: 'counter',
    baseUnit: 'byte',
    billingUnit: 'GB',
    divisor: '1000000000',
    natural: { unit: 'Mbit/s', perHour: '450000000', description: 'average Mbit/s' },
  },
  {
    name: 'gpu',
    code: 6,
    meaning: 'GPU-seconds used in the window',
    wire: { kind: 'decimal', places: 6, max: MAX_DECIMAL_6, unitPlural: 'GPU-seconds' },
    aggregation: 'counter',
    baseUnit: 'GPU-second',
    billingUnit: 'GPU-hour',
    divisor: '3600',
    // Like cpu: GPU-seconds in an hour ÷ 3600 = GPU-hours per hour = average busy GPUs.
    natural: { unit: 'GPU', perHour: '3600', description: 'busy GPUs' },
  },
] as const satisfies readonly MetricKindSpec[];

export type Metric = (typeof KINDS)[number]['name'];
export type MetricKind = MetricKindSpec & { name: Metric };

/** Every kind's name, in Enum8 order: the wire enum. */
export const METRICS = KINDS.map((k) => k.name) as [Metric, ...Metric[]];

export const METRIC_KINDS: Readonly<Record<Metric, MetricKind>> = Object.fromEntries(KINDS.map((k) => [k.name, k])) as Record<Metric, MetricKind>;

/** Gauges are billed as value × interval_s; the others are already totals. */
export const GAUGE_METRICS: ReadonlySet<Metric> = new Set(METRICS.filter((m) => METRIC_KINDS[m].aggregation === 'gauge'));

/** Base units per wire unit: a decimal kind is counted in micro-units (10^places), a whole one as is. */
export function wireScale(metric: Metric): number {
  const w = METRIC_KINDS[metric].wire;
  return w.kind === 'decimal' ? 10 ** w.places : 1;
}

// ---------------------------------------------------------------------------------------
// SQL fragments. Kind names are identifiers matching /^[a-z_]+$/ (checked below), so
// quoting them cannot break out of a literal; they are constants, not user input.
// ---------------------------------------------------------------------------------------

for (const k of KINDS) {
  if (!/^[a-z][a-z0-9_]*$/.test(k.name)) throw new Error(`metric kind ${k.name}: names are lower-case identifiers`);
  if (!/^[1-9]\d*$/.test(k.divisor) || !/^[1-9]\d*$/.test(k.natural.perHour)) throw new Error(`metric kind ${k.name}: divisors are positive integers`);
}
if (new Set(KINDS.map((k) => k.code)).size !== KINDS.length) throw new Error('metric kinds: Enum8 codes must be unique');

const lit = (s: string) => `'${s}'`;
const sqlList = (names: readonly string[]) => `(${names.map(lit).join(', ')})`;

/** `Enum8('cpu' = 1, …)`: the type of `metric` in every billing table. */
export function metricEnum8Sql(): string {
  return `Enum8(${KINDS.map((k) => `${lit(k.name)} = ${k.code}`).join(', ')})`;
}

/** `cpu, memory, …`: for an `Enum(…)` parameter and for documentation. */
export function metricNamesText(): string {
  return METRICS.join(', ');
}

/**
 * A sample's base amount: gauges × interval_s, counters as sent. `prefix` is a table alias
 * with its dot (`f.`). Byte-identical to the rule the rollup used before the catalogue.
 */
export function baseAmountSql(prefix = ''): string {
  const gauges = METRICS.filter((m) => GAUGE_METRICS.has(m));
  if (gauges.length === 0) return `${prefix}value`;
  return `if(${prefix}metric IN ${sqlList(gauges)}, ${prefix}value * ${prefix}interval_s, ${prefix}value)`;
}

/**
 * `multiIf(col = 'cpu', a, col IN (…), b, …)` over every kind, grouped by equal values. A
 * metric the catalogue does not know (an analytics row of a retired kind) stops the query
 * with a message rather than being read in some other kind's unit. throwIf's message must
 * be a constant; its condition is not, so it only runs for rows that reach it.
 */
function perKindSql(col: string, valueOf: (k: MetricKind) => string, cast: 'toUInt64' | 'toString'): string {
  const groups = new Map<string, Metric[]>();
  for (const m of METRICS) {
    const v = valueOf(METRIC_KINDS[m]);
    groups.set(v, [...(groups.get(v) ?? []), m]);
  }
  const branches = [...groups].map(([v, ms]) => (ms.length === 1 ? `${col} = ${lit(ms[0]!)}, ${v}` : `${col} IN ${sqlList(ms)}, ${v}`));
  const fail = `${cast}(throwIf(${col} != '', 'metric kind missing from schemas/metrics.ts'))`;
  return `multiIf(${branches.join(', ')}, ${fail})`;
}

/** Base units per hour of the natural unit (UInt64): hourly total ÷ this = natural value. */
export function naturalPerHourSql(col = 'metric'): string {
  return perKindSql(col, (k) => k.natural.perHour, 'toUInt64');
}

/** The natural unit's name ('vCPU', 'GiB', 'Mbit/s', 'GPU'). */
export function naturalUnitSql(col = 'metric'): string {
  return perKindSql(col, (k) => lit(k.natural.unit), 'toString');
}

/** The base unit's name ('vCPU-second', 'byte-second', 'byte', 'GPU-second'). */
export function baseUnitSql(col = 'metric'): string {
  return perKindSql(col, (k) => lit(k.baseUnit), 'toString');
}

/** `'cpu'`: a kind as a SQL literal, type-checked against the catalogue. */
export function metricSql(m: Metric): string {
  return lit(METRIC_KINDS[m].name);
}

/** "busy vCPUs (vCPU), GiB allocated (GiB), …": what a natural-unit column means. */
export function naturalUnitsText(): string {
  const seen = new Set<string>();
  const parts: string[] = [];
  for (const m of METRICS) {
    const n = METRIC_KINDS[m].natural;
    if (seen.has(n.unit)) continue;
    seen.add(n.unit);
    parts.push(`${n.unit} (${n.description})`);
  }
  return parts.join(', ');
}

/** "cpu: vCPU-second, memory: byte-second, …": the base unit of each kind. */
export function baseUnitsText(): string {
  return METRICS.map((m) => `${m}: ${METRIC_KINDS[m].baseUnit}`).join(', ');
}

/** "cpu ÷ 3600, memory ÷ 3865470566400, …": hourly base total → natural value, per kind. */
export function naturalPerHourText(): string {
  return METRICS.map((m) => `${m} ÷ ${METRIC_KINDS[m].natural.perHour}`).join(', ');
}

/**
 * `Enum8('cpu' = 1, …)` as ClickHouse reports it in system.columns → label → code. Returns
 * undefined for any other type. Labels are our identifiers, so no escaped quotes occur.
 */
export function parseEnum8(type: string): Map<string, number> | undefined {
  const m = /^Enum8\((.*)\)$/.exec(type.trim());
  if (!m) return undefined;
  const out = new Map<string, number>();
  for (const part of m[1]!.matchAll(/'([^']*)'\s*=\s*(-?\d+)/g)) out.set(part[1]!, Number(part[2]));
  return out;
}

/**
 * Why a `metric` column's type disagrees with the catalogue, or undefined when it matches:
 * every kind present with its code, and no label the catalogue does not have.
 */
export function metricEnumMismatch(type: string): string | undefined {
  const found = parseEnum8(type);
  if (!found) return `is ${type}, expected ${metricEnum8Sql()}`;
  const problems: string[] = [];
  for (const k of KINDS) {
    const code = found.get(k.name);
    if (code === undefined) problems.push(`lacks '${k.name}'`);
    else if (code !== k.code) problems.push(`has '${k.name}' = ${code}, the catalogue says ${k.code}`);
  }
  for (const label of found.keys()) if (!(label in METRIC_KINDS)) problems.push(`has '${label}', which the catalogue does not`);
  return problems.length ? `${problems.join('; ')} (expected ${metricEnum8Sql()})` : undefined;
}
