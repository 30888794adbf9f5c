/**
 * Pruning superseded analytics versions without a subquery mutation (rollup-sql.ts
 * STALE_ANALYTICS_VERSIONS_SQL and PRUNE_ANALYTICS_SQL): list the stale (hour, version)
 * pairs, then delete them by value, a bounded chunk per statement, so each statement's
 * parameters stay far below the server's URL and field limits.
 */
import { z } from 'zod';
import { TupleParam } from '@clickhouse/client';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { PRUNE_ANALYTICS_SQL, STALE_ANALYTICS_VERSIONS_SQL } from './rollup-sql.js';

/** Pairs per DELETE: ~40 bytes each once encoded, so ~20 KB of parameters. */
export const PRUNE_CHUNK = 500;
/** Pairs per call: the rest wait for the next prune. */
export const PRUNE_MAX_PAIRS = 5_000;

/** Deletes superseded analytics versions (the newest of each hour stays). Returns how many (hour, version) pairs went. */
export async function pruneAnalyticsVersions(ch: ClickHouseClient, opts: { chunk?: number; maxPairs?: number } = {}): Promise<number> {
  const chunk = opts.chunk ?? PRUNE_CHUNK;
  const stale = await queryRows(ch, z.object({ stale_hour: z.coerce.number().int(), stale_version: z.string() }), STALE_ANALYTICS_VERSIONS_SQL, {
    limit: opts.maxPairs ?? PRUNE_MAX_PAIRS,
  });
  for (let i = 0; i < stale.length; i += chunk) {
    const pairs = stale.slice(i, i + chunk).map((p) => new TupleParam([p.stale_hour, BigInt(p.stale_version)]));
    await ch.command({ query: PRUNE_ANALYTICS_SQL, query_params: { stale: pairs } });
  }
  return stale.length;
}
