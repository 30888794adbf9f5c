/**
 * Folds the rows written since the last round (acceptance sequence from < seq <= through)
 * into their hours' billing aggregates and ingest stats, all hours in one statement per
 * table. The cost follows the new rows, plus a scan of an 8-byte hash over the hours to
 * find earlier copies by id (by natural key, the ts index narrows it to a few granules).
 * The earlier copies are found inside each statement, so what the fold sends is a few
 * scalars and the hours, however many copies a re-sent batch has: @clickhouse/client puts
 * parameters in the URL, which a server bounds (http_max_field_value_size, 128 KiB).
 * See rollup-fold-sql.ts for why the result equals a whole-hour recomputation.
 */
import { z } from 'zod';
import { TupleParam } from '@clickhouse/client';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { EARLIER_POSITIONS_SQL, FOLD_STATS_SQL, FOLD_USAGE_SQL, FRESH_HOURS_SQL } from './rollup-fold-sql.js';

export type FoldRange = {
  /** Usage hours, epoch seconds. */
  hours: number[];
  from: number;
  through: number;
};

export interface FoldResult {
  /** Hours that had rows in the range, and how many rows (copies included). */
  hours: number[];
  rows: number;
}

/**
 * Hours per statement. The hours are the one list the fold sends as a parameter, about 13
 * URL-encoded bytes each: 4,096 of them stay under 54 KB, well inside a server's 128 KiB
 * per field (and its 1 MiB URI). Hours are independent of each other in every fold
 * statement, so a longer list (a backfill over RAW_RETENTION_DAYS, up to 3,650 days) is
 * folded a slice at a time with the same result.
 */
export const MAX_FOLD_HOURS = 4096;

export async function foldHours(ch: ClickHouseClient, range: FoldRange, version: number): Promise<FoldResult> {
  const out: FoldResult = { hours: [], rows: 0 };
  for (let i = 0; i < range.hours.length; i += MAX_FOLD_HOURS) {
    const part = await foldSlice(ch, { ...range, hours: range.hours.slice(i, i + MAX_FOLD_HOURS) }, version);
    out.hours.push(...part.hours);
    out.rows += part.rows;
  }
  return out;
}

async function foldSlice(ch: ClickHouseClient, range: FoldRange, version: number): Promise<FoldResult> {
  if (range.hours.length === 0 || range.through <= range.from) return { hours: [], rows: 0 };
  const fresh = await queryRows(ch, z.object({ hour: z.coerce.number(), rows: z.coerce.number() }), FRESH_HOURS_SQL, range);
  const hours = fresh.map((r) => Number(r.hour)).sort((a, b) => a - b);
  const rows = fresh.reduce((n, r) => n + Number(r.rows), 0);
  if (rows === 0) return { hours: [], rows: 0 };
  const params = { hours, from: range.from, through: range.through, version };
  await ch.command({ query: FOLD_USAGE_SQL, query_params: params });
  await ch.command({ query: FOLD_STATS_SQL, query_params: params });
  return { hours, rows };
}

/**
 * (batch_seq, item) of the earlier rows the fold consults (rollup-fold-sql.ts), read back
 * for tests and diagnostics. The fold statements compute the same set themselves; passing
 * this result to them as a parameter changes nothing.
 */
export async function earlierPositions(ch: ClickHouseClient, range: FoldRange): Promise<TupleParam[]> {
  // Nothing is accepted at or below sequence 0: no scan.
  if (range.from === 0) return [];
  const rows = await queryRows(ch, z.object({ batch_seq: z.string(), item: z.coerce.number() }), EARLIER_POSITIONS_SQL, range);
  return rows.map((r) => new TupleParam([Number(r.batch_seq), r.item]));
}
