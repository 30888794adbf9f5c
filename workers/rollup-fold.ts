/**
 * Folds the rows written since the last round (acceptance sequence from < seq <= through)
 * into their hours' billing aggregates and ingest stats, all hours in one statement per
 * table. The cost follows the new rows, plus one scan of two 8-byte hashes over the hours
 * to find their earlier copies (and one of one hash to find the rows sharing their ids);
 * see rollup-fold-sql.ts for why the result equals a whole-hour recomputation.
 */
import { TupleParam } from '@clickhouse/client';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { EARLIER_COPIES_SQL, EARLIER_POSITIONS_SQL, FOLD_STATS_SQL, FOLD_USAGE_SQL, FRESH_HOURS_SQL } from './rollup-fold-sql.js';

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
  /** Earlier rows consulted to decide which copies count. */
  earlier: number;
}

export async function foldHours(ch: ClickHouseClient, range: FoldRange, version: number): Promise<FoldResult> {
  if (range.hours.length === 0 || range.through <= range.from) return { hours: [], rows: 0, earlier: 0 };
  const fresh = await queryRows<{ hour: number; rows: string }>(ch, FRESH_HOURS_SQL, range);
  const hours = fresh.map((r) => Number(r.hour)).sort((a, b) => a - b);
  const rows = fresh.reduce((n, r) => n + Number(r.rows), 0);
  if (rows === 0) return { hours: [], rows: 0, earlier: 0 };
  const narrowed = { ...range, hours };
  const earlier = await earlierPositions(ch, narrowed);
  const params = { ...narrowed, earlier, version };
  await ch.command({ query: FOLD_USAGE_SQL, query_params: params });
  await ch.command({ query: FOLD_STATS_SQL, query_params: params });
  return { hours, rows, earlier: earlier.length };
}

/** (batch_seq, item) of the earlier rows the fold must consult (rollup-fold-sql.ts). */
export async function earlierPositions(ch: ClickHouseClient, range: FoldRange): Promise<TupleParam[]> {
  // Nothing is accepted at or below sequence 0: no scan.
  if (range.from === 0) return [];
  const ids = (await queryRows<{ id: string }>(ch, EARLIER_COPIES_SQL, range)).map((r) => r.id);
  if (ids.length === 0) return [];
  const rows = await queryRows<{ batch_seq: string; item: number }>(ch, EARLIER_POSITIONS_SQL, { ...range, ids });
  return rows.map((r) => new TupleParam([Number(r.batch_seq), Number(r.item)]));
}
