/**
 * Folds one hour's newly written rows (acceptance sequence from < seq <= through) into its
 * billing aggregates and ingest stats. The cost follows the new rows, plus one scan of two
 * 8-byte hashes over the hour to find their earlier copies; see rollup-fold-sql.ts for why
 * the result equals a whole-hour recomputation.
 */
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { EARLIER_COPIES_SQL, FOLD_STATS_SQL, FOLD_USAGE_SQL } from './rollup-fold-sql.js';

export interface FoldResult {
  /** Rows in the range (copies included). */
  fresh: number;
  /** Earlier rows consulted to decide which copies count. */
  earlierIds: number;
}

export async function foldHour(ch: ClickHouseClient, hour: number, from: number, through: number, version: number): Promise<FoldResult> {
  const range = { hour, from, through };
  const [{ n }] = (await queryRows<{ n: string }>(
    ch,
    `SELECT count() AS n FROM billing.samples_raw WHERE usage_hour = {hour:DateTime('UTC')} AND batch_seq > {from:UInt64} AND batch_seq <= {through:UInt64}`,
    range,
  )) as [{ n: string }];
  const fresh = Number(n);
  if (fresh === 0) return { fresh, earlierIds: 0 };
  // Nothing accepted up to `from` can share a key or id with the range: skip the scan.
  const oldIds = from === 0 ? [] : (await queryRows<{ id: string }>(ch, EARLIER_COPIES_SQL, range)).map((r) => r.id);
  const params = { ...range, oldIds, version };
  await ch.command({ query: FOLD_USAGE_SQL, query_params: params });
  await ch.command({ query: FOLD_STATS_SQL, query_params: params });
  return { fresh, earlierIds: oldIds.length };
}
