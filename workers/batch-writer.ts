/**
 * Processes accepted batches: writes their raw billing rows, then hands their hours to the
 * rollup. Concurrent jobs' batches are coalesced into one insert (insert-coalescer.ts).
 * Safe to run any number of times for the same job.
 */
import { createHash } from 'node:crypto';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ClickHouseSettings } from '@clickhouse/client';
import { insertNdjson, type ClickHouseClient } from '../lib/clickhouse.js';
import { RAW_ROW_FORMAT, rawInsertTarget } from '../schemas/raw-row.js';
import { isDataRefusal } from '../lib/engine-errors.js';
import { accountsOfRows, addToQuarantine } from '../domain/quarantine.js';
import { isolateRefusedRows } from './poison-isolation.js';
import { markWritten, park } from '../domain/ledger.js';
import { isLastAttempt, payloadOf } from './queues.js';
import { QUEUE_NAMES, type BatchJob, type RedisKeys } from '../schemas/queues.js';
import { InsertCoalescer } from './insert-coalescer.js';
import { isRedelivery, rewriteToken, shortBatches } from './redelivery-check.js';

export interface BatchWriterDeps {
  ch: ClickHouseClient;
  redis: Redis;
  keys: RedisKeys;
  /** Rows per insert at most when coalescing (the engine's sweet spot is ~10k). */
  maxInsertRows?: number;
  /** QUARANTINE_MAX_ROWS: refused rows the quarantine holds at most. */
  maxQuarantinedRows?: number;
  onQuarantined?: (batchId: string, rows: number, reason: string) => void;
  onWritten?: (rows: number, ms: number) => void;
  onInsert?: (batches: number, rows: number) => void;
  /** A redelivered batch found short after its insert and written again (redelivery-check.ts). */
  onRewritten?: (batchId: string, missingRows: number) => void;
}

/** A batch as the coalescer carries it: whether its job ran before decides whether it is checked. */
interface Delivery {
  batch: BatchJob;
  redelivered: boolean;
}

export function createBatchWriter(deps: BatchWriterDeps) {
  const coalescer = new InsertCoalescer<Delivery>({
    write: (deliveries) => writeBatches(deps, deliveries),
    rowsOf: (d) => d.batch.rowCount,
    maxRows: deps.maxInsertRows ?? 20_000,
  });

  return async function writeBatch(job: Pick<Job<BatchJob>, 'data'> & Partial<Pick<Job<BatchJob>, 'attemptsMade' | 'attemptsStarted' | 'opts'>>): Promise<{ rows: number }> {
    const started = performance.now();
    // A payload that does not match its schema can never succeed: straight to the
    // dead-letter set, with the reason, instead of burning retries.
    const batch = payloadOf(QUEUE_NAMES.batches, job.data);
    const redelivered = isRedelivery(job);
    try {
      await coalescer.submit({ batch, redelivered });
    } catch (insertError) {
      try {
        // The engine refused the rows themselves: the same insert would fail on every retry
        // and hold every later batch's hours back. Write what it takes, quarantine the rest.
        if (!isDataRefusal(insertError)) throw insertError;
        return { rows: await writeAroundRefusedRows(deps, batch, insertError, redelivered) };
      } catch (err) {
        // Last attempt: the batch becomes a dead letter and must not hold the fold back.
        if (isLastAttempt(job, 'running')) await park(deps.redis, deps.keys, batch).catch(() => undefined);
        throw err;
      }
    }
    notify(() => deps.onWritten?.(batch.rowCount, performance.now() - started));
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
 *   1b. a redelivered batch counts its rows and writes again what is short: a crash
 *      mid-insert can leave its token in the engine's deduplication log without its rows
 *      (redelivery-check.ts), and then step 1 dropped it as a repeat;
 *   2. per batch, atomically: mark its hours pending for the rollup (or, if it is behind the
 *      fold watermark, for whole recomputation) and drop it from the in-flight and parked
 *      sets, so `complete` can only turn true after the rollup has counted these rows;
 *   3. return: BullMQ completes the jobs. A crash before this point redelivers them and
 *      steps 1–2 repeat harmlessly.
 */
async function writeBatches(deps: BatchWriterDeps, deliveries: Delivery[]): Promise<void> {
  const batches = deliveries.map((d) => d.batch);
  for (const group of groupByEncoding(batches)) {
    const format = group[0]!.rowFormat;
    const rows = group.map((b) => (b.rows.endsWith('\n') ? b.rows : `${b.rows}\n`)).join('');
    const token = group.length === 1 ? group[0]!.batchId : createHash('sha256').update(group.map((b) => b.batchId).sort().join(',')).digest('hex');
    await insertRawRows(deps.ch, { rows, rowFormat: format }, { insert_deduplication_token: token });
  }
  const redelivered = deliveries.filter((d) => d.redelivered).map((d) => d.batch);
  for (const short of await shortBatches(deps.ch, redelivered, (b) => b.rowCount)) {
    await insertRawRows(deps.ch, short.batch, { insert_deduplication_token: rewriteToken(short.batch.batchId) });
    notify(() => deps.onRewritten?.(short.batch.batchId, short.expected - short.found));
  }
  await markWritten(deps.redis, deps.keys, batches);
  notify(() => deps.onInsert?.(batches.length, batches.reduce((n, b) => n + b.rowCount, 0)));
}

/** Metrics and logs never break the path they observe. */
function notify(observe: () => void): void {
  try {
    observe();
  } catch {
    // an observer's failure is its own
  }
}

/**
 * Delivery order for a batch the engine refused for its data:
 *   1. find and insert the rows the engine takes (poison-isolation.ts: deterministic tokens,
 *      so a repeat after a crash inserts nothing new); a redelivered batch then counts its
 *      rows and writes the taken rows again if any are missing (redelivery-check.ts);
 *   2. add the refused rows to the quarantine under the batch id (a repeat finds them there);
 *   3. mark the batch written: it leaves the in-flight set, the watermark passes it, and
 *      only the accounts of the refused rows see their usage reported incomplete.
 * A full quarantine stops at 2 with an error: the job is retried, later a dead letter,
 * and nothing acknowledged is dropped.
 */
async function writeAroundRefusedRows(deps: BatchWriterDeps, batch: BatchJob, err: unknown, redelivered: boolean): Promise<number> {
  const format = batch.rowFormat ?? 'JSONEachRow';
  const isolation = await isolateRefusedRows((rows, settings) => insertRawRows(deps.ch, rows, settings), batch, err);
  const taken = batch.rowCount - isolation.refused.length;
  const [short] = redelivered && taken > 0 ? await shortBatches(deps.ch, [batch], () => taken) : [];
  if (short) {
    const refusedItems = new Set(isolation.refusedItems);
    const takenRows = batch.rows.split('\n').filter((l) => l !== '').filter((_l, i) => !refusedItems.has(i));
    await insertRawRows(deps.ch, { rows: takenRows.join('\n') + '\n', rowFormat: batch.rowFormat }, { insert_deduplication_token: rewriteToken(batch.batchId) });
    notify(() => deps.onRewritten?.(batch.batchId, short.expected - short.found));
  }
  if (isolation.refused.length > 0) {
    const entry = {
      id: batch.batchId,
      batchSeq: batch.batchSeq,
      acceptedAtMs: batch.acceptedAtMs,
      firstSeenMs: Date.now(),
      reason: isolation.reason,
      rowFormat: format,
      rowCount: isolation.refused.length,
      rows: isolation.refused.join('\n') + '\n',
      accounts: accountsOfRows(format, isolation.refused, batch),
    };
    const added = await addToQuarantine(deps.redis, deps.keys, entry, deps.maxQuarantinedRows ?? 100_000);
    if (added === 'full') throw new Error(`the quarantine is full (QUARANTINE_MAX_ROWS); ${entry.rowCount} refused rows of batch ${batch.batchId} wait in their job: ${isolation.reason}`);
    if (added === 'added') notify(() => deps.onQuarantined?.(batch.batchId, entry.rowCount, entry.reason));
  }
  await markWritten(deps.redis, deps.keys, [batch]);
  return batch.rowCount - isolation.refused.length;
}

/**
 * Batches whose lines can share one insert: the same encoding and, for compact lines, the
 * same columns (a job queued before a column was appended carries fewer values per line).
 */
function groupByEncoding(batches: BatchJob[]): BatchJob[][] {
  const groups = new Map<string, BatchJob[]>();
  for (const b of batches) {
    const key = b.rowFormat === RAW_ROW_FORMAT ? rawInsertTarget(firstLine(b.rows)) : 'JSONEachRow';
    const group = groups.get(key);
    if (group) group.push(b);
    else groups.set(key, [b]);
  }
  return [...groups.values()];
}

function firstLine(rows: string): string {
  const end = rows.indexOf('\n');
  return end < 0 ? rows : rows.slice(0, end);
}

/** A job's rows into billing.samples_raw, in the encoding the job says it carries. */
export function insertRawRows(ch: ClickHouseClient, batch: Pick<BatchJob, 'rows' | 'rowFormat'>, settings: ClickHouseSettings): Promise<void> {
  return batch.rowFormat === RAW_ROW_FORMAT
    ? insertNdjson(ch, rawInsertTarget(firstLine(batch.rows)), batch.rows, settings, RAW_ROW_FORMAT)
    : insertNdjson(ch, 'billing.samples_raw', batch.rows, settings); // queued before rowFormat existed
}
