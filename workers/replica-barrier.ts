/**
 * The read-your-writes barrier of a replicated cluster (deploy/cluster/README.md): billing
 * reads and writes go to one write replica at a time, and when that replica changes
 * (failover, or a deliberate move) nothing billing-related runs on the new one until it has
 * caught up with every replicated billing table. The rollup and the period closer call
 * `catchUp` under their locks before a round, so no round folds, recomputes or
 * fingerprints from a replica that misses rows another replica acknowledged.
 *
 * Which replica answers is the server's own `hostName()`; the last one that caught up is
 * in the ledger (`writeReplica`). With one server (or the embedded engine) the replica
 * never changes and the barrier costs one `SELECT hostName()` per round; tables that are
 * not replicated have nothing to sync and are skipped.
 */
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { readWriteReplica, recordWriteReplica } from '../domain/ledger.js';
import type { RedisKeys } from '../schemas/queues.js';

/** What a billing round reads: they must all be caught up before one runs on a new replica. */
export const BILLING_TABLES = ['samples_raw', 'usage_hourly', 'ingest_stats_hourly', 'adjustments_hourly', 'periods', 'accounts'] as const;

export interface CatchUp {
  replica: string;
  /** Replicated tables synced because the replica changed; empty when it did not change, or none is replicated. */
  synced: string[];
  changed: boolean;
}

export async function catchUp(ch: ClickHouseClient, redis: Redis, keys: RedisKeys): Promise<CatchUp> {
  const [host] = await queryRows(ch, z.object({ h: z.string() }), 'SELECT hostName() AS h');
  const replica = host?.h ?? '';
  const last = await readWriteReplica(redis, keys);
  if (last === replica) return { replica, synced: [], changed: false };
  const replicated = await queryRows(
    ch,
    z.object({ name: z.string() }),
    `SELECT name FROM system.tables WHERE database = 'billing' AND name IN {tables:Array(String)} AND engine LIKE 'Replicated%' ORDER BY name`,
    { tables: [...BILLING_TABLES] },
  );
  // Table names come from the fixed list above, never from input.
  for (const { name } of replicated) await ch.command({ query: `SYSTEM SYNC REPLICA billing.${name}` });
  // Recorded only once every table caught up: a failure leaves the replica "new", and the
  // next round tries again before doing anything.
  await recordWriteReplica(redis, keys, replica);
  return { replica, synced: replicated.map((r) => r.name), changed: true };
}
