/**
 * Folds one hour's newly written rows (acceptance sequence from < seq <= through) into its
 * billing aggregates and ingest stats. The cost follows the new rows, plus one scan of two
 * 8-byte hashes over the hour to find their earlier copies (and one of one hash to find
 * the rows sharing their ids); see rollup-fold-sql.ts for why
 * the result equals a whole-hour recomputation.
 */
import { TupleParam } from '@clickhouse/client';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { EARLIER_COPIES_SQL, EARLIER_POSITIONS_SQL, FOLD_STATS_SQL, FOLD_USAGE_SQL } from './rollup-fold-sql.js';

export interface FoldResult {
  /** Rows in the range (copies included). */
  fresh: number;
  /** Earlier rows consulted to decide which copies count. */
  earlier: number;
}

export async function foldHour(ch: ClickHouseClient, hour: number, from: number, through: number, version: number): Promise<FoldResult> {
  const range = { hour, from, through };
  const [{ n }] = (await queryRows<{ n: string }>(
    ch,
    `SELECT count() AS n FROM billing.samples_raw WHERE usage_hour = {hour:DateTime('UTC')} AND batch_seq > {from:UInt64} AND batch_seq <= {through:UInt64}`,
    range,
  )) as [{ n: string }];
  const fresh = Number(n);
  if (fresh === 0) return { fresh, earlier: 0 };
  const earlier = await earlierPositions(ch, range);
  const params = { ...range, earlier, version };
  await ch.command({ query: FOLD_USAGE_SQL, query_params: params });
  await ch.command({ query: FOLD_STATS_SQL, query_params: params });
  return { fresh, earlier: earlier.length };
}

/** (batch_seq, item) of the earlier rows the fold must consult (rollup-fold-sql.ts). */
export async function earlierPositions(ch: ClickHouseClient, range: { hour: number; from: number; through: number }): Promise<TupleParam[]> {
  // Nothing is accepted at or below sequence 0: no scan.
  if (range.from === 0) return [];
  const ids = (await queryRows<{ id: string }>(ch, EARLIER_COPIES_SQL, range)).map((r) => r.id);
  if (ids.length === 0) return [];
  const rows = await queryRows<{ batch_seq: string; item: number }>(ch, EARLIER_POSITIONS_SQL, { ...range, ids });
  return rows.map((r) => new TupleParam([Number(r.batch_seq), Number(r.item)]));
}
