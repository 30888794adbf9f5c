/**
 * Row versions of the ReplacingMergeTree tables the rollup and the period closer write.
 * They come from the ledger's fleet-wide counter (domain/ledger.ts `nextRowVersion`), not
 * from each process's clock: a round on a host whose clock is behind would otherwise lose
 * to an older row, and its fold would never be redone.
 *
 * The counter is seeded, when absent, from the highest version these tables hold. Not
 * billing.accounts (its lifecycle versions are derived from deadlines near 9e15 on purpose,
 * domain/accounts.ts) nor analytics.instance_types (hand-numbered reference rows).
 */
import { z } from 'zod';
import type { Redis } from 'ioredis';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import type { RedisKeys } from '../schemas/queues.js';
import { nextRowVersion } from './ledger.js';

export const ROW_VERSIONED_TABLES = [
  'billing.usage_hourly',
  'billing.ingest_stats_hourly',
  'billing.adjustments_hourly',
  'billing.periods',
  'analytics.fleet_usage_hourly_versions',
  'analytics.suppression_hourly',
] as const;

/** The highest version any of ROW_VERSIONED_TABLES holds ('0' when they are empty). */
export async function highestWrittenVersion(ch: ClickHouseClient): Promise<string> {
  const union = ROW_VERSIONED_TABLES.map((t) => `SELECT max(version) AS v FROM ${t}`).join(' UNION ALL ');
  const [row] = await queryRows(ch, z.object({ v: z.coerce.string() }), `SELECT toString(max(v)) AS v FROM (${union})`);
  return row?.v ?? '0';
}

/** The next row version, for a writer whose wall clock reads `clockMs`. Call it under the writer's lock. */
export function issueRowVersion(ch: ClickHouseClient, redis: Redis, keys: RedisKeys, clockMs: number): Promise<number> {
  return nextRowVersion(redis, keys, clockMs, () => highestWrittenVersion(ch));
}
