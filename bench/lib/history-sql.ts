/**
 * Synthetic billing history straight into billing.samples_raw with INSERT … SELECT from
 * numbers_mt(): row n is series (a0 × seriesPerAccount + n mod S) at window (n div S),
 * so rows come time-major, like a fleet reporting. Accounts have
 * `seriesPerAccount / HISTORY_METRICS.length` VMs, each with every metric below; ids follow
 * the simulator's pattern.
 */
import type { ClickHouseClient } from '../../lib/clickhouse.js';
import type { Metric } from '../../schemas/metrics.js';

/**
 * Each catalogue kind's synthetic value per window (SQL over h, a per-row hash, and the
 * window length), or null: not in the history. A Record over every kind, so adding a kind
 * to the catalogue fails type-checking here until someone decides. gpu is left out so the
 * history's rows, and so the bench's numbers, stay comparable with runs before it.
 */
const VALUE_SQL: Record<Metric, ((stepS: number) => string) | null> = {
  cpu: (stepS) => `CAST(h % ${stepS * 2_000_000} AS Decimal(38, 6)) / 1000000`,
  memory: () => `CAST(8589934592 AS Decimal(38, 6))`,
  storage: () => `CAST(53687091200 + h % 1000000000 AS Decimal(38, 6))`,
  bandwidth_in: () => `CAST(h % 100000000 AS Decimal(38, 6))`,
  bandwidth_out: () => `CAST(h % 100000000 AS Decimal(38, 6))`,
  gpu: null,
};
/** The kinds each synthetic VM reports, in the order series are numbered. */
export const HISTORY_METRICS = (Object.keys(VALUE_SQL) as Metric[]).filter((m) => VALUE_SQL[m] !== null);
const N = HISTORY_METRICS.length;
const valueSql = (stepS: number) =>
  `multiIf(${HISTORY_METRICS.slice(0, -1).map((m, i) => `metric_n = ${i + 1}, ${VALUE_SQL[m]!(stepS)}`).join(',\n               ')},\n               ${VALUE_SQL[HISTORY_METRICS[N - 1]!]!(stepS)})`;

export interface HistoryBlock {
  accountPrefix: string;
  /** First account number and how many accounts. */
  a0: number;
  accounts: number;
  seriesPerAccount: number;
  /** Window length; window k of a series ends at startMs + (k + 1) × stepS. */
  stepS: number;
  startMs: number;
  steps: number;
  /** batch_seq continues after this: acceptance order stays unique across blocks. */
  seqBase: number;
}

const SQL = (b: HistoryBlock) => `
INSERT INTO billing.samples_raw (usage_hour, account_id, resource_id, metric, ts, id, resource_type, region, interval_s, value, attributes, batch_id, batch_seq, item, accepted_at)
SELECT toStartOfHour(toDateTime(intDiv(ts_ms - 1, 1000), 'UTC')) AS usage_hour,
       concat({prefix:String}, leftPad(toString(acct), 6, '0')) AS account_id,
       concat('vm-', account_id, '-', toString(res)) AS resource_id,
       arrayElement([${HISTORY_METRICS.map((m) => `'${m}'`).join(', ')}], metric_n) AS metric,
       fromUnixTimestamp64Milli(ts_ms, 'UTC') AS ts,
       concat(resource_id, ':', metric, ':', toString(ts_ms)) AS id,
       'vm' AS resource_type,
       arrayElement(['us-east-1', 'eu-west-1', 'us-west-2', 'eu-central-1', 'ap-south-1', 'ap-northeast-1'], acct % 6 + 1) AS region,
       ${b.stepS} AS interval_s,
       ${valueSql(b.stepS)} AS value,
       map('instance_type', 'm5.large', 'plan', 'on_demand', 'zone', concat(region, 'a')) AS attributes,
       generateUUIDv4(n) AS batch_id,
       {seqBase:UInt64} + intDiv(n, 1000) + 1 AS batch_seq,
       n % 1000 AS item,
       fromUnixTimestamp64Milli(ts_ms + 30000, 'UTC') AS accepted_at
FROM (SELECT number AS n, intDiv(n, {S:UInt64}) AS step, {a0:UInt64} * ${b.seriesPerAccount} + n % {S:UInt64} AS series,
             intDiv(series, ${b.seriesPerAccount}) AS acct, intDiv(series % ${b.seriesPerAccount}, ${N}) AS res, series % ${N} + 1 AS metric_n,
             {start:Int64} + (toInt64(step) + 1) * ${b.stepS * 1000} AS ts_ms, cityHash64(n, {a0:UInt64}) AS h
      FROM numbers_mt({count:UInt64}))`;

/** Inserts the block; returns the rows written. */
export async function insertHistory(ch: ClickHouseClient, b: HistoryBlock): Promise<number> {
  const series = b.accounts * b.seriesPerAccount;
  const count = series * b.steps;
  await ch.command({
    query: SQL(b),
    query_params: { prefix: b.accountPrefix, seqBase: b.seqBase, S: series, a0: b.a0, start: b.startMs, count },
    clickhouse_settings: { max_insert_threads: '2' },
  });
  return count;
}
