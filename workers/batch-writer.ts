/**
 * Processes one accepted batch: writes its raw billing rows, then hands its hours to the
 * rollup. Safe to run any number of times for the same job.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ClickHouseSettings } from '@clickhouse/client';
import { insertNdjson, type ClickHouseClient } from '../lib/clickhouse.js';
import { RAW_INSERT_TARGET, RAW_ROW_FORMAT } from '../schemas/raw-row.js';
import { releaseInTx } from '../lib/inflight.js';
import { batchJobSchema, type BatchJob, type RedisKeys } from '../schemas/queues.js';

export interface BatchWriterDeps {
  ch: ClickHouseClient;
  redis: Redis;
  keys: RedisKeys;
  onWritten?: (rows: number, ms: number) => void;
}

export function createBatchWriter(deps: BatchWriterDeps) {
  return async function writeBatch(job: Pick<Job<BatchJob>, 'data'>): Promise<{ rows: number }> {
    const started = performance.now();
    const parsed = batchJobSchema.safeParse(job.data);
    // A payload that does not match its schema can never succeed: straight to the
    // dead-letter set, with the reason, instead of burning retries.
    if (!parsed.success) throw new UnrecoverableError(`invalid batch payload: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const batch = parsed.data;

    // Delivery order in the worker:
    //   1. insert the raw rows with the batch id as deduplication token. A retry after a
    //      crash anywhere below inserts nothing new (the engine drops the repeated block),
    //      and even a repeat outside the dedup window bills nothing twice, because
    //      billing.counted_samples keeps the first copy of each sample;
    //   2. mark the batch's hours dirty and drop it from the in-flight set, atomically, so
    //      `complete` can only turn true after the rollup has seen these rows;
    //   3. return: BullMQ completes the job. A crash before this point redelivers the job
    //      and steps 1–2 repeat harmlessly.
    await insertRawRows(deps.ch, batch, { insert_deduplication_token: batch.batchId });
    const tx = deps.redis.multi();
    for (const hour of batch.hours) tx.hincrby(deps.keys.dirtyHours, String(hour), 1);
    releaseInTx(tx, deps.keys, batch.batchId);
    const results = (await tx.exec()) ?? [];
    const failed = results.find(([err]) => err);
    if (failed?.[0]) throw failed[0];

    try {
      deps.onWritten?.(batch.rowCount, performance.now() - started);
    } catch {
      // metrics never break the path they observe
    }
    return { rows: batch.rowCount };
  };
}

/** A job's rows into billing.samples_raw, in the encoding the job says it carries. */
export function insertRawRows(ch: ClickHouseClient, batch: Pick<BatchJob, 'rows' | 'rowFormat'>, settings: ClickHouseSettings): Promise<void> {
  return batch.rowFormat === RAW_ROW_FORMAT
    ? insertNdjson(ch, RAW_INSERT_TARGET, batch.rows, settings, RAW_ROW_FORMAT)
    : insertNdjson(ch, 'billing.samples_raw', batch.rows, settings); // queued before rowFormat existed
}
