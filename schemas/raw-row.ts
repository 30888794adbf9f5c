/**
 * The raw billing row: its columns in `billing.samples_raw`, and its compact encoding in a
 * batch job. A job carries its rows as JSONCompactEachRow lines (values in RAW_COLUMNS
 * order, no key names): about 40% fewer bytes in Redis than one JSON object per row, and
 * less for the engine to parse. The worker inserts them as they are.
 */
import type { Metric, NormalizedSample, ResourceType } from './sample.js';

export const RAW_COLUMNS = [
  'batch_id',
  'batch_seq',
  'item',
  'id',
  'account_id',
  'resource_id',
  'resource_type',
  'region',
  'metric',
  'ts',
  'usage_hour',
  'interval_s',
  'value',
  'attributes',
  'accepted_at',
] as const;

export interface RawRow {
  batch_id: string;
  batch_seq: number;
  item: number;
  id: string;
  account_id: string;
  resource_id: string;
  resource_type: ResourceType;
  region: string;
  metric: Metric;
  /** Window end, epoch ms. */
  ts: number;
  /** The hour it is billed in, epoch seconds (lib/time.ts usageHourOf). */
  usage_hour: number;
  interval_s: number;
  /** Exact decimal string. */
  value: string;
  attributes: Record<string, string>;
  accepted_at: number;
}

export const RAW_ROW_FORMAT = 'JSONCompactEachRow';

/** The INSERT a batch job's rows go through. */
export const RAW_INSERT_TARGET = `billing.samples_raw (${RAW_COLUMNS.join(', ')})`;

export function encodeRawRow(row: RawRow): string {
  return JSON.stringify(RAW_COLUMNS.map((c) => row[c]));
}

export function decodeRawRow(line: string): RawRow {
  const values = JSON.parse(line) as unknown[];
  return Object.fromEntries(RAW_COLUMNS.map((c, i) => [c, values[i]])) as unknown as RawRow;
}

/**
 * A row as a batch job stores it, in either encoding (`rowFormat` absent: the JSONEachRow
 * objects of jobs queued before the compact format). Throws on a line that is not JSON.
 */
export function decodeStoredRow(line: string, rowFormat: 'JSONEachRow' | 'JSONCompactEachRow' | undefined): RawRow {
  return rowFormat === RAW_ROW_FORMAT ? decodeRawRow(line) : (JSON.parse(line) as RawRow);
}

export function rawRowOf(s: NormalizedSample, usageHour: number, batch: { batchId: string; batchSeq: number; acceptedAtMs: number }, item: number): RawRow {
  return {
    batch_id: batch.batchId,
    batch_seq: batch.batchSeq,
    item,
    id: s.id,
    account_id: s.account_id,
    resource_id: s.resource_id,
    resource_type: s.resource_type,
    region: s.region,
    metric: s.metric,
    ts: s.ts_ms,
    usage_hour: usageHour,
    interval_s: s.interval_s,
    value: s.value,
    attributes: s.attributes,
    accepted_at: batch.acceptedAtMs,
  };
}
