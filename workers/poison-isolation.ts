/**
 * Finding the rows of a batch that the engine refuses, so that the rest can be written.
 *
 * Ingest validation is meant to accept only what the engine stores unchanged (the property
 * test in test/adversarial/ proves it for the rules we know). This is the net under it: a
 * batch the engine refuses *for its data* (lib/engine-errors.ts) is split in halves, each
 * half inserted on its own, recursively, until every refused range is one row, or the
 * work bound is spent and the ranges still refused are kept whole. An outage during the
 * search (any other error) abandons it: the job is retried, nothing was lost, and every
 * insert made so far carries a deterministic deduplication token, so the retry's search
 * makes the same inserts and the engine drops the repeats (billing.counted_samples would
 * count each sample once anyway). A repeat the engine drops although its rows never landed
 * (a crash mid-insert) is caught by the batch writer's count on redelivery
 * (redelivery-check.ts).
 */
import type { ClickHouseSettings } from '@clickhouse/client';
import { engineErrorType, isDataRefusal } from '../lib/engine-errors.js';
import type { BatchJob } from '../schemas/queues.js';

/** Inserts, at most, that one batch's search may make: about 16 refused rows found in a 10k batch. */
export const MAX_ISOLATION_INSERTS = 256;

export interface Isolation {
  /** The refused rows, encoded as in the job, in their original order. */
  refused: string[];
  /** Their positions in the batch (the raw row's `item`). */
  refusedItems: number[];
  /** The engine's reason for the first refused range. */
  reason: string;
  inserts: number;
}

export type InsertRows = (batch: Pick<BatchJob, 'rows' | 'rowFormat'>, settings: ClickHouseSettings) => Promise<void>;

export async function isolateRefusedRows(insert: InsertRows, batch: BatchJob, firstError: unknown): Promise<Isolation> {
  const lines = batch.rows.split('\n').filter((l) => l !== '');
  const refused: number[] = [];
  let reason = describe(firstError);
  let reasonSet = false;
  let inserts = 0;

  const refuse = (lo: number, hi: number, err: unknown) => {
    if (!reasonSet) {
      reason = describe(err);
      reasonSet = true;
    }
    for (let i = lo; i < hi; i++) refused.push(i);
  };

  // Depth-first, left half first: deterministic, so a retry repeats the same inserts.
  const search = async (lo: number, hi: number, err: unknown): Promise<void> => {
    if (hi - lo === 1) return refuse(lo, hi, err);
    const mid = lo + Math.ceil((hi - lo) / 2);
    for (const [a, b] of [
      [lo, mid],
      [mid, hi],
    ] as const) {
      // Out of budget: this half was not tried, so it is kept whole (written by a replay).
      if (inserts >= MAX_ISOLATION_INSERTS) {
        refuse(a, b, err);
        continue;
      }
      inserts++;
      try {
        await insert({ rows: lines.slice(a, b).join('\n') + '\n', rowFormat: batch.rowFormat }, { insert_deduplication_token: `${batch.batchId}:${a}-${b}` });
      } catch (e) {
        if (!isDataRefusal(e)) throw e; // an outage, not the data: retry the job later
        await search(a, b, e);
      }
    }
  };
  await search(0, lines.length, firstError);
  return { refused: refused.map((i) => lines[i]!), refusedItems: refused, reason, inserts };
}

function describe(err: unknown): string {
  const type = engineErrorType(err);
  const message = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 500);
  return type ? `${type}: ${message}` : message;
}
