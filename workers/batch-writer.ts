/**
 * Processes accepted batches: writes their raw billing rows, then hands their hours to the
 * rollup. Concurrent jobs' batches are coalesced into one insert (insert-coalescer.ts).
 * Safe to run any number of times for the same job.
 */
import { createHash } from 'node:crypto';
import { UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ClickHouseSettings } from '@clickhouse/client';
import { insertNdjson, type ClickHouseClient } from '../lib/clickhouse.js';
import { RAW_INSERT_TARGET, RAW_ROW_FORMAT } from '../schemas/raw-row.js';
import { markWrittenInPipeline, parkInTx } from '../lib/fold-watermark.js';
import { batchJobSchema, type BatchJob, type RedisKeys } from '../schemas/queues.js';
import { InsertCoalescer } from './insert-coalescer.js';

export interface BatchWriterDeps {
  ch: ClickHouseClient;
  redis: Redis;
  keys: RedisKeys;
  /** Rows per insert at most when coalescing (the engine's sweet spot is ~10k). */
  maxInsertRows?: number;
  onWritten?: (rows: number, ms: number) => void;
  onInsert?: (batches: number, rows: number) => void;
}

export function createBatchWriter(deps: BatchWriterDeps) {
  const coalescer = new InsertCoalescer<BatchJob>({
    write: (batches) => writeBatches(deps, batches),
    rowsOf: (b) => b.rowCount,
    maxRows: deps.maxInsertRows ?? 20_000,
  });

  return async function writeBatch(job: Pick<Job<BatchJob>, 'data'> & Partial<Pick<Job<BatchJob>, 'attemptsMade' | 'opts'>>): Promise<{ rows: number }> {
    const started = performance.now();
    const parsed = batchJobSchema.safeParse(job.data);
    // A payload that does not match its schema can never succeed: straight to the
    // dead-letter set, with the reason, instead of burning retries.
    if (!parsed.success) throw new UnrecoverableError(`invalid batch payload: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const batch = parsed.data;
    try {
      await coalescer.submit(batch);
    } catch (err) {
      // Last attempt: the batch becomes a dead letter and must not hold the fold back.
      if ((job.attemptsMade ?? 0) + 1 >= (job.opts?.attempts ?? 1)) await parkInTx(deps.redis.multi(), deps.keys, batch.batchId, batch.batchSeq).exec().catch(() => undefined);
      throw err;
    }
    try {
      deps.onWritten?.(batch.rowCount, performance.now() - started);
    } catch {
      // metrics never break the path they observe
    }
    return { rows: batch.rowCount };
  };
}

/**
 * Delivery order in the worker:
 *   1. insert the raw rows of the coalesced batches, with their ids as deduplication token.
 *      A retry after a crash anywhere below inserts nothing new when it coalesces the same
 *      way (the engine drops the repeated block), and even a repeat that coalesces
 *      differently bills nothing twice, because billing.counted_samples keeps the first copy
 *      of each sample;
 *   2. per batch, atomically: mark its hours pending for the rollup (or, if it is behind the
 *      fold watermark, for whole recomputation) and drop it from the in-flight and parked
 *      sets, so `complete` can only turn true after the rollup has counted these rows;
 *   3. return: BullMQ completes the jobs. A crash before this point redelivers them and
 *      steps 1–2 repeat harmlessly.
 */
async function writeBatches(deps: BatchWriterDeps, batches: BatchJob[]): Promise<void> {
  for (const [format, group] of groupByFormat(batches)) {
    const rows = group.map((b) => (b.rows.endsWith('\n') ? b.rows : `${b.rows}\n`)).join('');
    const token = group.length === 1 ? group[0]!.batchId : createHash('sha256').update(group.map((b) => b.batchId).sort().join(',')).digest('hex');
    await insertRawRows(deps.ch, { rows, rowFormat: format }, { insert_deduplication_token: token });
  }
  const pipeline = deps.redis.pipeline();
  for (const b of batches) markWrittenInPipeline(pipeline, deps.keys, b);
  const results = (await pipeline.exec()) ?? [];
  const failed = results.find(([err]) => err);
  if (failed?.[0]) throw failed[0];
  try {
    deps.onInsert?.(batches.length, batches.reduce((n, b) => n + b.rowCount, 0));
  } catch {
    // metrics never break the path they observe
  }
}

function groupByFormat(batches: BatchJob[]): Map<BatchJob['rowFormat'], BatchJob[]> {
  const groups = new Map<BatchJob['rowFormat'], BatchJob[]>();
  for (const b of batches) {
    const group = groups.get(b.rowFormat);
    if (group) group.push(b);
    else groups.set(b.rowFormat, [b]);
  }
  return groups;
}

/** A job's rows into billing.samples_raw, in the encoding the job says it carries. */
export function insertRawRows(ch: ClickHouseClient, batch: Pick<BatchJob, 'rows' | 'rowFormat'>, settings: ClickHouseSettings): Promise<void> {
  return batch.rowFormat === RAW_ROW_FORMAT
    ? insertNdjson(ch, RAW_INSERT_TARGET, batch.rows, settings, RAW_ROW_FORMAT)
    : insertNdjson(ch, 'billing.samples_raw', batch.rows, settings); // queued before rowFormat existed
}
