/**
 * What a redelivered batch job checks after its insert, because the engine's deduplication
 * token cannot be trusted across a crash.
 *
 * MergeTree's insert deduplication (non_replicated_deduplication_window, used by
 * billing.samples_raw) writes the block's token to its deduplication log *before* it
 * commits the part (MergeTreeSink::finishDelayedChunk: addPart, then renameTempPartAndAdd).
 * A process killed between the two leaves the token on disk without the rows, and the
 * retry with the same token is then dropped as a "duplicate": acknowledged usage, silently
 * lost. The same code runs in the server, so a server crash has the same hole.
 * test/dedup-crash.integration.test.ts kills an engine mid-insert until it happens.
 *
 * A job delivered again (its earlier attempt may have died mid-insert) therefore counts its
 * batch's rows after the insert and writes again, under a token of its own, any batch that
 * is short. A second copy of rows that were there after all bills nothing twice:
 * billing.counted_samples keeps the first copy of each sample. A first delivery skips the
 * check: nothing of its own can be in the deduplication log before it.
 */
import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import { z } from 'zod';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import type { BatchJob } from '../schemas/queues.js';

const rowsOfBatch = z.object({ batch_seq: z.coerce.number(), rows: z.coerce.number() });

/** A job that ran before (killed mid-job, lock lost, or failed): its insert may have left a token behind. */
export function isRedelivery(job: Partial<Pick<Job, 'attemptsStarted' | 'attemptsMade'>>): boolean {
  return (job.attemptsStarted ?? 0) > 1 || (job.attemptsMade ?? 0) > 0;
}

/** Distinct rows (by item) each batch has in billing.samples_raw. */
export async function rowsWritten(ch: ClickHouseClient, batches: Pick<BatchJob, 'batchSeq' | 'hours'>[]): Promise<Map<number, number>> {
  const hours = [...new Set(batches.flatMap((b) => b.hours))];
  const seqs = batches.map((b) => b.batchSeq);
  const rows = await queryRows(
    ch,
    rowsOfBatch,
    `SELECT batch_seq, uniqExact(item) AS rows
     FROM billing.samples_raw
     WHERE usage_hour IN {hours:Array(DateTime('UTC'))} AND batch_seq IN {seqs:Array(UInt64)}
     GROUP BY batch_seq`,
    { hours, seqs },
  );
  return new Map(rows.map((r) => [r.batch_seq, r.rows]));
}

export interface ShortBatch<B> {
  batch: B;
  expected: number;
  found: number;
}

/**
 * The batches with fewer rows written than `expected` says they must have, after an insert
 * that may have been dropped as a false duplicate.
 */
export async function shortBatches<B extends Pick<BatchJob, 'batchSeq' | 'hours'>>(
  ch: ClickHouseClient,
  batches: B[],
  expected: (b: B) => number,
): Promise<ShortBatch<B>[]> {
  if (batches.length === 0) return [];
  const written = await rowsWritten(ch, batches);
  return batches
    .map((batch) => ({ batch, expected: expected(batch), found: written.get(batch.batchSeq) ?? 0 }))
    .filter((s) => s.found < s.expected);
}

/** A token no earlier insert can have used: the rewrite must never be taken for a repeat. */
export function rewriteToken(batchId: string): string {
  return `${batchId}:rewrite:${randomUUID()}`;
}
