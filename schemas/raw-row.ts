/**
 * The raw billing row: its columns in `billing.samples_raw`, and its compact encoding in a
 * batch job. A job carries its rows as JSONCompactEachRow lines (values in RAW_COLUMNS
 * order, no key names): about 40% fewer bytes in Redis than one JSON object per row, and
 * less for the engine to parse. The worker inserts them as they are.
 *
 * Columns are only ever appended. A job queued before a column existed carries fewer values
 * per line: `rawInsertTarget` names the columns a line of that length carries, so the
 * engine fills the rest with their defaults (e.g. `estimated` = '': measured). A line of any
 * other length is left for the engine to refuse, never padded.
 */
import type { Estimation, Metric, NormalizedSample, ResourceType } from './sample.js';

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
  // Added with migration 0090: the sample's provenance ('' = measured, 'held').
  'estimated',
] as const;

/** How many values a line carried before each appended column: jobs queued by older releases. */
const LEGACY_ARITIES = [15] as const;

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
  /** '' (or absent, in rows queued before it existed): measured; otherwise how it was estimated. */
  estimated?: Estimation | '';
}

export const RAW_ROW_FORMAT = 'JSONCompactEachRow';

/** The INSERT a batch job's rows go through. */
export const RAW_INSERT_TARGET = `billing.samples_raw (${RAW_COLUMNS.join(', ')})`;

/**
 * The INSERT target for compact lines like `firstLine`: the columns that existed when a line
 * of its length was written. Anything that is not a legacy length (unreadable, or any other
 * count) gets today's columns, and the engine refuses what does not fit them.
 */
export function rawInsertTarget(firstLine: string): string {
  let arity: number | undefined;
  try {
    const values: unknown = JSON.parse(firstLine);
    if (Array.isArray(values)) arity = values.length;
  } catch {
    // not JSON: the engine says so, as for any refused row
  }
  return LEGACY_ARITIES.includes(arity as (typeof LEGACY_ARITIES)[number])
    ? `billing.samples_raw (${RAW_COLUMNS.slice(0, arity).join(', ')})`
    : RAW_INSERT_TARGET;
}

export function encodeRawRow(row: RawRow): string {
  return JSON.stringify(RAW_COLUMNS.map((c) => (c === 'estimated' ? (row.estimated ?? '') : row[c])));
}

/** A compact line as a row; a line from before an appended column leaves that field absent. */
export function decodeRawRow(line: string): RawRow {
  const values = JSON.parse(line) as unknown[];
  return Object.fromEntries(RAW_COLUMNS.flatMap((c, i) => (i < values.length ? [[c, values[i]]] : []))) as unknown as RawRow;
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
    estimated: s.estimated ?? '',
  };
}
