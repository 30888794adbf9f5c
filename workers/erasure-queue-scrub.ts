/**
 * Erasure's queue scrub (step 2 of workers/erasure.ts), split from the orchestration
 * because it works on BullMQ jobs, not on tables: every not-active batch job holding the
 * account's rows is rewritten without them (or removed), with counts by kind and the
 * resource ids taken for the fingerprint list; active jobs are waited for.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import { ERASED_LIMITS } from '../domain/erased-identifiers.js';
import { batchJobSchema, type BatchJob } from '../schemas/queues.js';
import { decodeStoredRow } from '../schemas/raw-row.js';

/** How long erasure waits for another process to let go of the account: an active batch job, or the rollup's lock. */
export const ACTIVE_WAIT_MS = 60_000;

export interface ScrubResult {
  queuedJobs: number;
  queuedRows: number;
  deadLetterJobs: number;
  deadLetterRows: number;
  /** Batches whose job was removed whole (their in-flight marks go). */
  removed: string[];
  /** Resource ids of the rows taken out, for the fingerprint list (bounded by the caller). */
  resourceIds: Set<string>;
}

/** Rewrites every not-active batch job that holds the account's rows; counts jobs and rows by kind. */
export async function scrubQueue(queue: Queue<BatchJob>, account: string): Promise<ScrubResult> {
  const out: ScrubResult = { queuedJobs: 0, queuedRows: 0, deadLetterJobs: 0, deadLetterRows: 0, removed: [], resourceIds: new Set() };
  const scrubState = async (states: readonly ('waiting' | 'delayed' | 'prioritized' | 'failed' | 'completed' | 'waiting-children')[], deadLetters: boolean) => {
    for (let start = 0; ; start += 500) {
      const jobs = await queue.getJobs([...states], start, start + 499);
      if (jobs.length === 0) break;
      let removedHere = 0;
      for (const job of jobs) {
        if (!job?.data?.accounts?.includes(account)) continue;
        const { kept, taken } = splitAccount(job.data, account);
        for (const r of taken) if (out.resourceIds.size < ERASED_LIMITS.identifiersPerErasure) out.resourceIds.add(r);
        if (kept) await job.updateData(kept);
        else {
          await job.remove();
          out.removed.push(job.data.batchId);
          removedHere++;
        }
        if (deadLetters) (out.deadLetterJobs++, (out.deadLetterRows += taken.length));
        else (out.queuedJobs++, (out.queuedRows += taken.length));
      }
      // A removed job shifts the pages after it: read this page again.
      if (removedHere > 0) start -= removedHere;
      if (jobs.length < 500) break;
    }
  };
  await scrubState(['waiting', 'delayed', 'prioritized', 'completed', 'waiting-children'], false);
  await scrubState(['failed'], true);
  return out;
}

/** The job without the account's rows, or undefined when nothing else is left. */
export function withoutAccount(data: BatchJob, account: string): BatchJob | undefined {
  return splitAccount(data, account).kept;
}

/** The job without the account's rows (undefined when nothing else is left), and the resource ids of the rows taken. */
function splitAccount(data: BatchJob, account: string): { kept: BatchJob | undefined; taken: string[] } {
  const batch = batchJobSchema.parse(data);
  const all = batch.rows
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => ({ line, row: decodeStoredRow(line, batch.rowFormat) }));
  const kept = all.filter(({ row }) => row.account_id !== account);
  const taken = all.filter(({ row }) => row.account_id === account).map(({ row }) => row.resource_id);
  if (kept.length === 0) return { kept: undefined, taken };
  const lines = kept.map((k) => k.line);
  const hours = new Set(kept.map((k) => k.row.usage_hour));
  return {
    kept: {
      ...batch,
      rows: lines.join('\n') + '\n',
      rowCount: lines.length,
      hours: [...hours].sort((a, b) => a - b),
      accounts: batch.accounts.filter((a) => a !== account),
    },
    taken,
  };
}

/** Returns once no active batch job holds the account; fails (and the job retries) after ACTIVE_WAIT_MS. */
export async function waitForActiveJobs(queue: Queue<BatchJob>, account: string): Promise<void> {
  const deadline = Date.now() + ACTIVE_WAIT_MS;
  while ((await queue.getJobs(['active'])).some((j) => j?.data?.accounts?.includes(account))) {
    if (Date.now() > deadline) throw new Error('a batch job holding the account stayed active too long; retrying');
    await sleep(100);
  }
}
