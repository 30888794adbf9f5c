/**
 * What the erasure worker needs, in a module of its own: erasure.ts runs the steps and
 * erasure-tables.ts / erasure-status.ts carry some of them out, and all three take these
 * (no file of the three imports another's types back).
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ClickHouseClient } from '../lib/clickhouse.js';
import type { BatchJob, RedisKeys } from '../schemas/queues.js';

export interface ErasureDeps {
  ch: ClickHouseClient;
  redis: Redis;
  keys: RedisKeys;
  batchQueue: Queue<BatchJob>;
  log: Logger;
  /** Bound of one attempt's wait for a mutation (default MUTATION_WAIT_MS). */
  mutationWaitMs?: number;
  /** How long the erased fingerprints are kept (AUDIT_RETENTION_MONTHS; default 24, policy §8). */
  fingerprintMonths?: number;
}
